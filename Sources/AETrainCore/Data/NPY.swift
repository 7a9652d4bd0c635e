import Foundation

/// NumPy's `.npy` format (versions 1.0, 2.0 and 3.0): a magic string, a little-endian header
/// length, a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, H, W), }`
/// (usually padded with spaces to a multiple of 64 bytes), then the raw data.
///
/// The header is read as `numpy.load` reads it: evaluated as a Python literal
/// (`PythonLiteral`), at most 10,000 characters, with exactly the three keys (a repeated key
/// keeps its last value); `shape` a tuple of non-negative ints; `fortran_order` True or False;
/// `descr` any spelling numpy gives float32, float64, float16 or uint8 in either byte order.
/// Data may follow beyond the array (numpy ignores it). Structured, sub-array and other dtypes,
/// which numpy reads but aetrain cannot train on, are refused with one line.
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
    /// Elements stored most significant byte first (`>f4`).
    public var bigEndian = false
    /// Elements stored in Fortran order: the first index varies fastest.
    public var fortranOrder = false

    /// Elements per row (the product of all dimensions but the first).
    public var rowLength: Int { shape.dropFirst().reduce(1, *) }
    public var rowCount: Int { shape.first ?? 1 }
}

extension NPYHeader {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// numpy.load's limit on the header's length in characters (`max_header_size`).
    public static let maxHeaderCharacters = 10_000

    /// The descr strings numpy reads as each element type, little-endian or big-endian (its
    /// type codes and names, with the byte-order marks it accepts for each).
    static let descriptions: [String: (NPYElement, bigEndian: Bool)] = {
        var table: [String: (NPYElement, bigEndian: Bool)] = [:]
        for (element, codes, names) in [(NPYElement.float32, ["f", "f4"], ["float32", "single"]), (.float64, ["d", "f8"], ["float64", "double", "float"]),
                                        (.float16, ["e", "f2"], ["float16", "half"]), (.uint8, ["B", "u1"], ["uint8", "ubyte"])] {
            for name in names { table[name] = (element, false) }
            for code in codes {
                for order in ["", "<", "=", "|"] { table[order + code] = (element, false) }
                table[">" + code] = (element, element != .uint8)
            }
        }
        return table
    }()

    /// Parses the header at the start of `bytes`, which must hold at least the whole header
    /// (the first 64 KiB of a file is always enough for a header numpy reads).
    public static func parse(_ bytes: [UInt8], path: String) throws -> NPYHeader {
        func fail(_ why: String) -> UserError { UserError("\(path): not a usable .npy file: \(why)") }
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else { throw fail("bad magic (expected \\x93NUMPY)") }
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
        // Versions 1 and 2 are Latin-1, one character a byte; 3 is UTF-8, at most 4 bytes each.
        guard headerLength <= 4 * maxHeaderCharacters else { throw fail("the header is longer than \(maxHeaderCharacters) characters") }
        guard bytes.count >= start + headerLength else { throw fail("truncated header") }
        let raw = bytes[start..<(start + headerLength)]
        let text: [UInt32]
        if major == 3 {
            guard let s = String(validating: raw, as: UTF8.self) else { throw fail("the header is not UTF-8 text") }
            text = s.unicodeScalars.map(\.value)
        } else {
            text = raw.map { UInt32($0) }
        }
        guard text.count <= maxHeaderCharacters else { throw fail("the header is longer than \(maxHeaderCharacters) characters") }
        let literal: PythonLiteral
        do { literal = try PythonLiteral.parse(text, dropLongSuffix: major < 3) } catch let e as PythonLiteral.Refusal {
            throw fail("the header is not a Python literal: \(e.message)")
        }
        guard case .dict(let pairs) = literal else { throw fail("the header is not a dict") }
        var dict: [String: PythonLiteral] = [:]  // a repeated key keeps its last value
        for pair in pairs {
            guard case .str(let points) = pair.key, let key = string(points) else {
                throw fail("the header's keys are not exactly 'descr', 'fortran_order' and 'shape'")
            }
            dict[key] = pair.value
        }
        guard dict.keys.sorted() == ["descr", "fortran_order", "shape"] else {
            throw fail("the header's keys are \(dict.keys.sorted()), not exactly 'descr', 'fortran_order' and 'shape'")
        }

        let descrPoints: [UInt32]
        switch dict["descr"] {
        case .str(let points)?: descrPoints = points
        case .list?, .tuple?: throw fail("'descr' describes a structured or sub-array dtype, which aetrain does not read")
        default: throw fail("'descr' is not a string")
        }
        let descr = string(descrPoints) ?? "?"
        guard let (element, bigEndian) = descriptions[descr] else {
            throw fail("unsupported dtype \(SafeTensorsHeader.quoted(descr)) (supported: float32 '<f4', float64 '<f8', float16 '<f2', uint8 '|u1', either byte order)")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw fail("'fortran_order' is not True or False") }
        guard case .tuple(let dims)? = dict["shape"] else { throw fail("'shape' is not a tuple") }
        var shape: [Int] = []
        // Over the nonzero dimensions: a zero must not hide a product that overflows (rows of
        // (0, 2⁶², 4) would still be 2⁶⁴ elements long). Below 2⁵⁰ elements, any product of
        // dimensions times an element's 8 bytes fits in an Int.
        var total = 1
        for d in dims {
            guard case .int(let n) = d else { throw fail("'shape' holds something other than integers") }
            guard let n, n >= 0 else { throw fail("'shape' holds a negative dimension, or one beyond 64 bits") }
            let (t, overflow) = total.multipliedReportingOverflow(by: max(1, n))
            guard !overflow, t < 1 << 50 else { throw fail("shape \(shape + [n]) is too large (2⁵⁰ elements or more)") }
            total = t
            shape.append(n)
        }
        return NPYHeader(element: element, shape: shape, dataOffset: start + headerLength, bigEndian: bigEndian,
                         fortranOrder: fortran && shape.count > 1)
    }

    /// Code points as a String; nil when one is a lone surrogate.
    private static func string(_ points: [UInt32]) -> String? {
        let scalars = points.compactMap(Unicode.Scalar.init)
        guard scalars.count == points.count else { return nil }
        return String(String.UnicodeScalarView(scalars))
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
    /// float16, scaling uint8 by 1/255 and swapping big-endian bytes. Reads in bounded chunks,
    /// C order: the rows' one byte range; Fortran order: a range per column, as element
    /// (r, k) sits at r + N·(k's index over the trailing dimensions, first fastest).
    public func readRows(_ rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        let rowLength = header.rowLength, size = header.element.byteCount
        precondition(out.count >= rows.count * rowLength)
        guard header.fortranOrder else {
            let chunkRows = max(1, (8 << 20) / max(1, rowLength * size))
            var row = rows.lowerBound
            while row < rows.upperBound {
                let n = min(chunkRows, rows.upperBound - row)
                try read(count: n * rowLength, at: header.dataOffset + row * rowLength * size,
                         into: out.baseAddress.map { $0 + (row - rows.lowerBound) * rowLength }, stride: 1)
                row += n
            }
            return
        }
        let trailing = Array(header.shape.dropFirst())
        let chunkRows = max(1, (8 << 20) / size)
        for k in 0..<rowLength {
            // k's indices in C order, then their Fortran index.
            var rest = k, column = 0, scale = 1
            var indices = [Int](repeating: 0, count: trailing.count)
            for d in trailing.indices.reversed() { indices[d] = rest % trailing[d]; rest /= trailing[d] }
            for d in trailing.indices { column += indices[d] * scale; scale *= trailing[d] }
            var row = rows.lowerBound
            while row < rows.upperBound {
                let n = min(chunkRows, rows.upperBound - row)
                try read(count: n, at: header.dataOffset + (row + header.rowCount * column) * size,
                         into: out.baseAddress.map { $0 + (row - rows.lowerBound) * rowLength + k }, stride: rowLength)
                row += n
            }
        }
    }

    /// `count` elements from byte `offset` of the file, as Float, to dst[0], dst[stride], ….
    private func read(count: Int, at offset: Int, into dst: UnsafeMutablePointer<Float>?, stride: Int) throws {
        guard count > 0, let dst else { return }
        let data: Data
        do {
            try handle.seek(toOffset: UInt64(offset))
            guard let d = try handle.read(upToCount: count * header.element.byteCount), d.count == count * header.element.byteCount else {
                throw UserError("\(path): truncated while reading at byte \(offset)")
            }
            data = d
        } catch let e as UserError { throw e } catch {
            throw UserError("\(path): cannot read: \(error.localizedDescription)")
        }
        let big = header.bigEndian
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            // raw holds count elements, not necessarily aligned; dst has room for (count − 1)·stride + 1.
            switch header.element {
            case .float32:
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                    dst[i * stride] = Float(bitPattern: big ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits))
                }
            case .float64:
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                    dst[i * stride] = Float(Double(bitPattern: big ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits)))
                }
            case .float16:
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    dst[i * stride] = HalfFloats.float(f16: big ? UInt16(bigEndian: bits) : UInt16(littleEndian: bits))
                }
            case .uint8:
                for i in 0..<count { dst[i * stride] = Float(raw[i]) / 255 }
            }
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

