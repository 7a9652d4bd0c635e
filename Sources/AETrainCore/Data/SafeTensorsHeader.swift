import Foundation

/// The header of a `.safetensors` file, read and checked as hostile input, accepting exactly
/// what the reference reader (the `safetensors` package, 0.8) accepts:
///
///     bytes 0..<8        N, the JSON header's length (u64, little-endian), at most 100 MB
///     bytes 8..<8+N      UTF-8 JSON: {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
///                         "__metadata__": {"key": "value", …}}  (optional)
///     bytes 8+N..<size   the data section; offsets count from its start
///
/// The reference's rules, each checked here (`StrictJSON` reads the JSON as serde_json does):
/// - a name given twice keeps its last entry, but every entry must be valid; a key repeated
///   inside an entry, or `__metadata__` repeated, is an error;
/// - an entry is an object (`dtype`, `shape`, `data_offsets`; other keys ignored) or the array
///   [dtype, shape, data_offsets]; shapes and offsets are integers from 0 to 2⁶⁴−1, never
///   `200.0` or `2e2`; `__metadata__` is null or maps strings to strings;
/// - sorted by offsets, the tensors tile the data section from 0 to the end of the file, with
///   no gap and no overlap, each holding exactly shape × dtype bits (a whole number of bytes).
///
/// Every failure is one `UserError` line naming the file.
public struct SafeTensorsHeader: Equatable, Sendable {
    public struct Tensor: Equatable, Sendable {
        public var name: String
        public var dtype: String
        /// As written: a dimension may exceed `Int.max` when another is 0.
        public var shape: [UInt64]
        /// Bytes [begin, end) of the data section.
        public var begin: Int, end: Int
    }

    /// In file order of their data (by `begin`, `end`), then by name.
    public var tensors: [Tensor]
    /// The file offset of the data section (8 + N).
    public var dataStart: Int

    /// The header's most bytes: as the safetensors library's own limit (100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// Bits per element of every dtype the reference knows (F4 and F6 pack below a byte);
    /// nil for any other name, which the reference refuses.
    public static func elementBits(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64", "C64": 64
        case "F32", "I32", "U32": 32
        case "F16", "BF16", "I16", "U16": 16
        case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ": 8
        case "F6_E2M3", "F6_E3M2": 6
        case "F4": 4
        default: nil
        }
    }

    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

    /// Reads the header of the file at `path`, checked.
    public static func read(path: String) throws -> SafeTensorsHeader {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw UserError("\(path): cannot open for reading: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw UserError("\(path): cannot stat: \(String(cString: strerror(errno)))") }
        return try read(fd: fd, fileSize: Int(status.st_size), path: path)
    }

    /// Reads the header of the file open as `fd` (`fileSize` bytes), checked.
    static func read(fd: Int32, fileSize: Int, path: String) throws -> SafeTensorsHeader {
        func fail(_ why: String) -> UserError { UserError("\(path): not a usable .safetensors file: \(why)") }
        guard fileSize >= 8 else { throw fail("\(fileSize) bytes, shorter than the 8-byte header length") }
        let lengthBytes = try preadExactly(fd: fd, count: 8, at: 0, path: path)
        let length = lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(fileSize - 8) else {
            throw fail("the header length \(length) runs past the end of the file (\(fileSize) bytes)")
        }
        guard length <= UInt64(maxHeaderBytes) else { throw fail("the header length \(length) is beyond 100 MB") }
        let json = try preadExactly(fd: fd, count: Int(length), at: 8, path: path)
        return try parse(json: json, dataBytes: fileSize - 8 - Int(length), dataStart: 8 + Int(length), path: path)
    }

    /// Parses and checks the JSON header `json`, given the data section's length.
    public static func parse(json: [UInt8], dataBytes: Int, dataStart: Int, path: String) throws -> SafeTensorsHeader {
        func fail(_ why: String) -> UserError { UserError("\(path): not a usable .safetensors file: \(why)") }
        guard String(validating: json, as: UTF8.self) != nil else { throw fail("the header is not UTF-8 text") }
        let root: StrictJSON.Value
        do { root = try StrictJSON.parse(json) } catch let e as StrictJSON.SyntaxError {
            throw fail("the header is not a JSON object of tensors: \(e.message) at byte \(e.offset)")
        }
        guard case .object(let pairs) = root else { throw fail("the header is not a JSON object of tensors but \(describe(root))") }

        // Every entry checked, in file order; a repeated name keeps its last entry.
        var entries: [String: Entry] = [:]
        var sawMetadata = false
        for (name, value) in pairs {
            if name == "__metadata__" {
                guard !sawMetadata else { throw fail("\"__metadata__\" appears twice") }
                sawMetadata = true
                try checkMetadata(value, fail: fail)
            } else {
                entries[name] = try Entry(value, fail: { fail("tensor \(quoted(name)): \($0)") })
            }
        }

        // Sorted by offsets, the tensors tile [0, dataBytes): each begins where the last ended.
        let sorted = entries.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
        var covered: UInt64 = 0, previous = ""
        for (name, t) in sorted {
            let offsets = "data_offsets [\(t.begin), \(t.end)]"
            guard t.end >= t.begin else { throw fail("tensor \(quoted(name)): \(offsets) end before they begin") }
            guard t.begin == covered else {
                throw fail(t.begin > covered
                    ? "bytes \(covered)..<\(t.begin) of the data section belong to no tensor (tensor \(quoted(name)) has \(offsets))"
                    : "tensors \(quoted(previous)) and \(quoted(name)) overlap (\(quoted(name)) has \(offsets), the other ends at \(covered))")
            }
            covered = t.end
            previous = name
            guard t.end <= UInt64(dataBytes) else {
                throw fail("tensor \(quoted(name)): \(offsets) run past the end of the file (the data section has \(dataBytes) bytes)")
            }
            var bits = UInt64(t.bits)
            for d in t.shape {
                let (product, overflow) = bits.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor \(quoted(name)): the size of shape \(t.shape) of \(t.dtype) overflows 64 bits") }
                bits = product
            }
            guard bits % 8 == 0 else {
                throw fail("tensor \(quoted(name)): shape \(t.shape) of \(t.dtype) takes \(bits) bits, not a whole number of bytes")
            }
            guard bits / 8 == t.end - t.begin else {
                throw fail("tensor \(quoted(name)): shape \(t.shape) of \(t.dtype) takes \(bits / 8) bytes, but \(offsets) hold \(t.end - t.begin)")
            }
        }
        guard covered == UInt64(dataBytes) else {
            throw fail("bytes \(covered)..<\(dataBytes) of the data section, up to the end of the file, belong to no tensor")
        }
        // Every offset is at most dataBytes now, so an Int.
        let tensors = sorted.map { Tensor(name: $0.key, dtype: $0.value.dtype, shape: $0.value.shape, begin: Int($0.value.begin), end: Int($0.value.end)) }
        return SafeTensorsHeader(tensors: tensors, dataStart: dataStart)
    }

    /// One tensor's entry, as the reference's `TensorInfo`: an object with exactly one each of
    /// `dtype`, `shape` and `data_offsets` (other keys ignored), or the array of those three.
    struct Entry {
        var dtype: String, bits: Int, shape: [UInt64], begin: UInt64, end: UInt64

        init(_ value: StrictJSON.Value, fail: (String) -> UserError) throws {
            var dtype: StrictJSON.Value?, shape: StrictJSON.Value?, offsets: StrictJSON.Value?
            switch value {
            case .object(let pairs):
                for (key, v) in pairs {
                    switch key {
                    case "dtype": guard dtype == nil else { throw fail("\"dtype\" appears twice") }; dtype = v
                    case "shape": guard shape == nil else { throw fail("\"shape\" appears twice") }; shape = v
                    case "data_offsets": guard offsets == nil else { throw fail("\"data_offsets\" appears twice") }; offsets = v
                    default: continue
                    }
                }
            case .array(let items):
                guard items.count == 3 else { throw fail("an entry written as an array holds [dtype, shape, data_offsets], not \(items.count) items") }
                (dtype, shape, offsets) = (items[0], items[1], items[2])
            default: throw fail("the entry is \(SafeTensorsHeader.describe(value)), not an object with dtype, shape and data_offsets")
            }
            guard let dtype else { throw fail("missing \"dtype\"") }
            guard let shape else { throw fail("missing \"shape\"") }
            guard let offsets else { throw fail("missing \"data_offsets\"") }
            // A dtype is its name, or {"NAME": null} (serde's other spelling of a unit variant).
            let name: String
            switch dtype {
            case .string(let s): name = s
            case .object(let pairs) where pairs.count == 1:
                guard case .null = pairs[0].value else { throw fail("dtype \(SafeTensorsHeader.describe(dtype)) is not a dtype name") }
                name = pairs[0].key
            default: throw fail("dtype \(SafeTensorsHeader.describe(dtype)) is not a dtype name")
            }
            guard let bits = SafeTensorsHeader.elementBits(name) else { throw fail("unknown dtype \(SafeTensorsHeader.quoted(name))") }
            self.dtype = name
            self.bits = bits
            self.shape = try Self.integers(shape, "shape", count: nil, fail: fail)
            let o = try Self.integers(offsets, "data_offsets", count: 2, fail: fail)
            (begin, end) = (o[0], o[1])
        }

        /// A JSON array of integers from 0 to 2⁶⁴−1 (`count` of them, if given).
        static func integers(_ value: StrictJSON.Value, _ field: String, count: Int?, fail: (String) -> UserError) throws -> [UInt64] {
            guard case .array(let items) = value else { throw fail("\(field) is \(SafeTensorsHeader.describe(value)), not a list of integers") }
            if let count, items.count != count { throw fail("\(field) holds \(items.count) numbers, not \(count)") }
            return try items.map {
                switch $0 {
                case .unsigned(let n): return n
                case .negative(let n): throw fail("\(field) holds a negative dimension \(n)")
                case .float(let x): throw fail("\(field) holds \(x), not an integer (write whole numbers without a point or exponent)")
                default: throw fail("\(field) holds \(SafeTensorsHeader.describe($0)), not an integer")
                }
            }
        }
    }

    /// `__metadata__`: null, or an object of strings (a repeated key keeps its last value).
    private static func checkMetadata(_ value: StrictJSON.Value, fail: (String) -> UserError) throws {
        switch value {
        case .null: return
        case .object(let pairs):
            for (key, v) in pairs {
                guard case .string = v else { throw fail("\"__metadata__\" maps \(quoted(key)) to \(describe(v)); its values must be strings") }
            }
        default: throw fail("\"__metadata__\" is \(describe(value)), not an object of strings")
        }
    }

    /// `name` in double quotes, control characters escaped and at most 80 characters, for a
    /// one-line message.
    public static func quoted(_ name: String) -> String {
        let escaped = name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? String(format: "\\u%04X", $0.value) : String($0) }.joined()
        return "\"" + (escaped.count > 80 ? escaped.prefix(80) + "…" : escaped) + "\""
    }

    static func describe(_ value: StrictJSON.Value) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .unsigned(let n): "\(n)"
        case .negative(let n): "\(n)"
        case .float(let x): "\(x)"
        case .string(let s): "the string \(quoted(s))"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// `count` bytes at `offset`, or a one-line error.
    static func preadExactly(fd: Int32, count: Int, at offset: Int, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try SafeTensorsReader.preadFully(fd: fd, into: $0, count: count, at: offset, path: path) }
        return bytes
    }
}
