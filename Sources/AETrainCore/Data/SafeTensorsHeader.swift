import Foundation

/// The header of a `.safetensors` file, read and checked as hostile input:
///
///     bytes 0..<8        N, the JSON header's length (u64, little-endian)
///     bytes 8..<8+N      {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
///                         "__metadata__": {"key": "value", …}}  (optional)
///     bytes 8+N..<size   the data section; offsets count from its start
///
/// Every failure is one `UserError` line naming the file: a header length beyond the file, a
/// header that is not a JSON object of entries, a shape whose product overflows, offsets
/// outside the data section or whose length is not shape × dtype size.
public struct SafeTensorsHeader: Equatable, Sendable {
    public struct Tensor: Equatable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// Bytes [begin, end) of the data section.
        public var begin: Int, end: Int
    }

    /// In file order of their data (by `begin`), then by name.
    public var tensors: [Tensor]
    /// The file offset of the data section (8 + N).
    public var dataStart: Int

    /// The header's most bytes: as the safetensors library's own limit (100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// Bytes per element of the dtypes the format defines (F32 and kin); nil for a dtype it
    /// does not (such a tensor's byte length cannot be checked, and it cannot be read).
    public static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": 8
        case "F32", "I32", "U32": 4
        case "F16", "BF16", "I16", "U16": 2
        case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": 1
        default: nil
        }
    }

    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

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
        guard json.first == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        let fields: [String: Field]
        do { fields = try JSONDecoder().decode([String: Field].self, from: Data(json)) } catch {
            throw fail("the header is not a JSON object of tensors (\(describe(error)))")
        }
        var tensors: [Tensor] = []
        for (name, field) in fields {
            guard case .tensor(let dtype, let shape, let offsets) = field else {
                guard name == "__metadata__" else { throw fail("entry \"\(name)\" is not a tensor (dtype, shape, data_offsets)") }
                continue
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \"\(name)\" has a negative dimension in \(shape)") }
            guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor \"\(name)\": data_offsets \(offsets) are not [begin, end] with 0 ≤ begin ≤ end")
            }
            guard offsets[1] <= dataBytes else {
                throw fail("tensor \"\(name)\": data_offsets \(offsets) run past the end of the file (the data section has \(dataBytes) bytes)")
            }
            if let size = elementSize(dtype) {
                let bytes = try Sizes.product(shape + [size], naming: "\(path): tensor \"\(name)\" of shape \(shape)")
                guard bytes == offsets[1] - offsets[0] else {
                    throw fail("tensor \"\(name)\": shape \(shape) of \(dtype) takes \(bytes) bytes, but data_offsets \(offsets) hold \(offsets[1] - offsets[0])")
                }
            }
            tensors.append(Tensor(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }
        tensors.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(tensors, tensors.dropFirst()) where b.begin < a.end {
            throw fail("tensors \"\(a.name)\" and \"\(b.name)\" overlap (data_offsets [\(a.begin), \(a.end)] and [\(b.begin), \(b.end)])")
        }
        return SafeTensorsHeader(tensors: tensors, dataStart: dataStart)
    }

    /// One entry of the header: `__metadata__` (strings to strings, whatever its keys, a
    /// "dtype" among them), or a tensor.
    enum Field: Decodable {
        case tensor(dtype: String, shape: [Int], offsets: [Int])
        case metadata([String: String])

        enum Keys: String, CodingKey { case dtype, shape, data_offsets }

        init(from decoder: Decoder) throws {
            if decoder.codingPath.last?.stringValue == "__metadata__" {
                self = .metadata(try decoder.singleValueContainer().decode([String: String].self))
            } else if let c = try? decoder.container(keyedBy: Keys.self), c.contains(.dtype) {
                self = .tensor(dtype: try c.decode(String.self, forKey: .dtype), shape: try c.decode([Int].self, forKey: .shape),
                               offsets: try c.decode([Int].self, forKey: .data_offsets))
            } else {
                self = .metadata([:])  // not a tensor, under another name than __metadata__: refused by `parse`
            }
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): c.underlyingError.map { "\($0.localizedDescription)" } ?? c.debugDescription
        case DecodingError.keyNotFound(let key, let c): "missing \"\(key.stringValue)\" in \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            "bad value at \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: "\(error)"
        }
    }

    /// `count` bytes at `offset`, or a one-line error.
    static func preadExactly(fd: Int32, count: Int, at offset: Int, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try SafeTensorsReader.preadFully(fd: fd, into: $0, count: count, at: offset, path: path) }
        return bytes
    }
}
