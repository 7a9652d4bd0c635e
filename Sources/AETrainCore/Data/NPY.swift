import Foundation

/// NumPy's `.npy` format (versions 1.0, 2.0 and 3.0): a magic string, a little-endian header
/// length, an ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (N, H, W), }` padded with spaces to a multiple of 64 bytes, then the raw data.
///
/// Reading is by rows so that each rank touches only its own byte range of the file.
public enum NPYElement: String, Sendable, Codable {
    case float32 = "<f4", float64 = "<f8", float16 = "<f2", uint8 = "|u1"

    public var byteCount: Int {
        switch self {
        case .float32: 4
        case .float16: 2
        case .float64: 8
        case .uint8: 1
        }
    }
}

public struct NPYHeader: Equatable, Sendable {
    public var element: NPYElement
    public var shape: [Int]
    /// Offset of the first data byte in the file.
    public var dataOffset: Int

    /// Elements per row (the product of all dimensions but the first).
    public var rowLength: Int { shape.dropFirst().reduce(1, *) }
    public var rowCount: Int { shape.first ?? 1 }
}

extension NPYHeader {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Parses the header at the start of `bytes`, which must hold at least the whole header
    /// (the first 64 KiB of a file is always enough for the shapes we accept).
    public static func parse(_ bytes: [UInt8], path: String) throws -> NPYHeader {
        func fail(_ why: String) -> UserError { UserError("\(path): not a usable .npy file: \(why)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("bad magic (expected \\x93NUMPY)") }
        let major = bytes[6], minor = bytes[7]
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default: throw fail("unsupported format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)")
        }
        guard bytes.count >= 8 + lengthFieldSize else { throw fail("truncated header") }
        var headerLength = 0
        for i in 0..<lengthFieldSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        let start = 8 + lengthFieldSize
        guard headerLength > 0, headerLength <= 1 << 20, bytes.count >= start + headerLength else {
            throw fail("truncated header")
        }
        guard let text = String(bytes: bytes[start..<(start + headerLength)], encoding: major == 3 ? .utf8 : .ascii) else {
            throw fail("header is not text")
        }
        let dict = try parseDict(text, fail: fail)

        guard let descr = dict["descr"] else { throw fail("header has no 'descr'") }
        let element: NPYElement
        switch unquote(descr) {
        case "<f4": element = .float32
        case "<f8": element = .float64
        case "<f2": element = .float16
        case "|u1", "<u1", ">u1", "u1": element = .uint8
        case let other?:
            if other.hasPrefix(">") { throw fail("big-endian data ('\(other)'); save it little-endian, e.g. with arr.astype('<f4')") }
            throw fail("unsupported dtype '\(other)' (supported: float32 '<f4', float64 '<f8', float16 '<f2', uint8 '|u1')")
        case nil: throw fail("unsupported dtype \(descr) (supported: float32, float64, float16, uint8)")
        }
        guard let fortran = dict["fortran_order"] else { throw fail("header has no 'fortran_order'") }
        switch fortran {
        case "False": break
        case "True": throw fail("Fortran order; save it in C order, e.g. numpy.save(path, numpy.ascontiguousarray(arr))")
        default: throw fail("bad 'fortran_order' value \(fortran)")
        }
        guard let shapeText = dict["shape"] else { throw fail("header has no 'shape'") }
        let shape = try parseShape(shapeText, fail: fail)
        return NPYHeader(element: element, shape: shape, dataOffset: start + headerLength)
    }

    /// A Python dict literal whose values are strings, booleans or tuples of integers.
    private static func parseDict(_ text: String, fail: (String) -> UserError) throws -> [String: String] {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        guard s.first == "{", s.last == "}" else { throw fail("header is not a dict") }
        s = s.dropFirst().dropLast()
        var result: [String: String] = [:]
        while true {
            s = s.drop(while: { $0 == " " || $0 == "," || $0 == "\n" })
            if s.isEmpty { break }
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("malformed header") }
            s = s.dropFirst()
            guard let endKey = s.firstIndex(of: q) else { throw fail("malformed header") }
            let key = String(s[..<endKey])
            s = s[s.index(after: endKey)...].drop(while: { $0 == " " })
            guard s.first == ":" else { throw fail("malformed header") }
            s = s.dropFirst().drop(while: { $0 == " " })
            let value: Substring
            if s.first == "(" {
                guard let close = s.firstIndex(of: ")") else { throw fail("malformed header") }
                value = s[...close]
            } else if let vq = s.first, vq == "'" || vq == "\"" {
                guard let close = s.dropFirst().firstIndex(of: vq) else { throw fail("malformed header") }
                value = s[...close]
            } else {
                value = s.prefix(while: { $0 != "," && $0 != "}" })
            }
            result[key] = String(value).trimmingCharacters(in: .whitespaces)
            s = s[value.endIndex...]
        }
        return result
    }

    private static func unquote(_ v: String) -> String? {
        guard v.count >= 2, let f = v.first, f == v.last, f == "'" || f == "\"" else { return nil }
        return String(v.dropFirst().dropLast())
    }

    private static func parseShape(_ v: String, fail: (String) -> UserError) throws -> [Int] {
        guard v.hasPrefix("("), v.hasSuffix(")") else { throw fail("bad 'shape' \(v)") }
        let parts = v.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var dims: [Int] = []
        // Over the nonzero dimensions: a zero must not hide a product that overflows (rows of
        // (0, 2⁶², 4) would still be 2⁶⁴ elements long). Below 2⁵⁰ elements, any product of
        // dimensions times an element's 8 bytes fits in an Int.
        var total = 1
        for p in parts {
            guard let n = Int(p), n >= 0 else { throw fail("bad 'shape' \(v)") }
            let (t, overflow) = total.multipliedReportingOverflow(by: max(1, n))
            guard !overflow, t < 1 << 50 else { throw fail("shape \(v) is too large (2⁵⁰ elements or more)") }
            total = t
            dims.append(n)
        }
        return dims
    }
}

/// A `.npy` file open for reading rows.
public final class NPYReader {
    public let path: String
    public let header: NPYHeader
    private let handle: FileHandle

    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw UserError("\(path): no such file")
        }
        guard !isDir.boolValue else { throw UserError("\(path): is a directory, expected a .npy file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw UserError("\(path): cannot open for reading (permissions?)") }
        self.path = path
        self.handle = handle
        let head: Data
        do { head = try handle.read(upToCount: 65536) ?? Data() } catch {
            throw UserError("\(path): cannot read: \(error.localizedDescription)")
        }
        header = try NPYHeader.parse([UInt8](head), path: path)
        let fileSize: UInt64
        do { fileSize = try handle.seekToEnd() } catch { throw UserError("\(path): cannot seek: \(error.localizedDescription)") }
        let dataBytes = try Sizes.product(header.shape + [header.element.byteCount], naming: "\(path): the array \(header.shape)")
        let expected = UInt64(header.dataOffset) + UInt64(dataBytes)
        guard fileSize >= expected else {
            throw UserError("\(path): truncated: shape \(header.shape) needs \(expected) bytes, the file has \(fileSize)")
        }
    }

    deinit { try? handle.close() }

    /// Every element, as Float (see `readRows`).
    public func readAll() throws -> [Float] {
        var values = [Float](repeating: 0, count: header.shape.reduce(1, *))
        try values.withUnsafeMutableBufferPointer { try readRows(0..<header.rowCount, into: $0) }
        return values
    }

    /// Reads rows `rows` as Float into `out` (rows.count × rowLength), converting float64 and
    /// float16 and scaling uint8 by 1/255. Seeks to the rows' byte range; reads in bounded chunks.
    public func readRows(_ rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        let rowLength = header.rowLength
        precondition(out.count >= rows.count * rowLength)
        let rowBytes = rowLength * header.element.byteCount
        let chunkRows = max(1, (8 << 20) / max(1, rowBytes))
        var row = rows.lowerBound
        do {
            try handle.seek(toOffset: UInt64(header.dataOffset + row * rowBytes))
            while row < rows.upperBound {
                let n = min(chunkRows, rows.upperBound - row)
                guard let data = try handle.read(upToCount: n * rowBytes), data.count == n * rowBytes else {
                    throw UserError("\(path): truncated while reading row \(row)")
                }
                let first = (row - rows.lowerBound) * rowLength
                data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                    let dst = UnsafeMutableBufferPointer(rebasing: out[first...])
                    // raw holds n × rowLength little-endian elements, not necessarily aligned.
                    let count = n * rowLength
                    switch header.element {
                    case .float32:
                        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    case .float64:
                        for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                    case .float16:
                        for i in 0..<count { dst[i] = HalfFloats.float(f16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                    case .uint8:
                        for i in 0..<count { dst[i] = Float(raw[i]) / 255 }
                    }
                }
                row += n
            }
        } catch let e as UserError { throw e } catch {
            throw UserError("\(path): cannot read: \(error.localizedDescription)")
        }
    }
}

public enum NPYWriter {
    /// Encodes a float32 array of `shape` in `.npy` 1.0 format.
    public static func encode(_ values: UnsafeBufferPointer<Float>, shape: [Int]) -> Data {
        precondition(values.count == shape.reduce(1, *))
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that magic (6) + version (2) + length (2) + dict + "\n" is a multiple of 64.
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(NPYHeader.magic + [1, 0])
        let n = UInt16(dict.utf8.count)
        data.append(contentsOf: [UInt8(n & 0xff), UInt8(n >> 8)])
        data.append(contentsOf: Array(dict.utf8))
        data.reserveCapacity(data.count + 4 * values.count)
        for v in values {
            let bits = v.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Writes durably (`DurableFile`): a file already there is either kept whole or replaced whole.
    public static func write(_ values: UnsafeBufferPointer<Float>, shape: [Int], to url: URL) throws {
        try DurableFile.write(encode(values, shape: shape), to: url)
    }

    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        try values.withUnsafeBufferPointer { try write($0, shape: shape, to: url) }
    }
}

