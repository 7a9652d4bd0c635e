import Foundation

/// One tensor of a `.safetensors` file, open for reading rows: `FILE.safetensors:NAME`, or the
/// file's only tensor. F32, F16 and BF16 are widened to float32 as the rows are read, in
/// bounded chunks with `pread`, so a rank touches only its own byte range and holds at most
/// one chunk beside its shard.
public final class SafeTensorsReader {
    public let path: String
    public let tensor: SafeTensorsHeader.Tensor
    public let element: Element
    /// The tensor's shape; the first dimension counts the rows.
    public let shape: [Int]
    private let fd: Int32
    /// File offset of the tensor's first byte.
    private let start: Int

    /// The dtypes read as data.
    public enum Element: String, CaseIterable, Sendable {
        case F32, F16, BF16
        var byteCount: Int { self == .F32 ? 4 : 2 }
    }

    /// Opens `path` and selects `name` (nil: the only tensor).
    public init(path: String, tensor name: String?) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw UserError("\(path): no such file") }
        guard !isDir.boolValue else { throw UserError("\(path): is a directory, expected a .safetensors file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw UserError("\(path): cannot open for reading: \(String(cString: strerror(errno)))") }
        do {
            var status = stat()
            guard fstat(fd, &status) == 0 else { throw UserError("\(path): cannot stat: \(String(cString: strerror(errno)))") }
            let header = try SafeTensorsHeader.read(fd: fd, fileSize: Int(status.st_size), path: path)
            let names = header.tensors.map { SafeTensorsHeader.quoted($0.name) }.joined(separator: ", ")
            let chosen: SafeTensorsHeader.Tensor
            if let name {
                guard let t = header.tensor(named: name) else {
                    throw UserError("\(path): no tensor named \(SafeTensorsHeader.quoted(name)); the file holds " + (names.isEmpty ? "no tensors" : names))
                }
                chosen = t
            } else {
                guard let only = header.tensors.first else { throw UserError("\(path): the file holds no tensors") }
                guard header.tensors.count == 1 else {
                    throw UserError("\(path): the file holds \(header.tensors.count) tensors (\(names)); name one as \(path):NAME")
                }
                chosen = only
            }
            guard let element = Element(rawValue: chosen.dtype) else {
                throw UserError("\(path): tensor \(SafeTensorsHeader.quoted(chosen.name)) has dtype \(chosen.dtype); aetrain reads F32, F16 and BF16")
            }
            // The header checked shape × size only as a whole: a huge dimension passes beside a 0,
            // where rows (or row lengths) could still overflow an Int. Such a tensor holds no data.
            let shape = chosen.shape.compactMap { Int(exactly: $0) }
            guard shape.count == chosen.shape.count else {
                throw UserError("\(path): tensor \(SafeTensorsHeader.quoted(chosen.name)) has shape \(chosen.shape), a dimension of 2⁶³ or more: it holds no data to read")
            }
            _ = try Sizes.product(shape.map { max(1, $0) } + [element.byteCount], naming: "\(path): tensor \(SafeTensorsHeader.quoted(chosen.name)) of shape \(shape)")
            self.path = path; self.fd = fd; self.tensor = chosen; self.element = element; self.shape = shape
            start = header.dataStart + chosen.begin
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Reads rows `rows` (of the first dimension) as Float into `out` (rows.count × row length).
    public func readRows(_ rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
        let rowLength = shape.dropFirst().reduce(1, *)  // checked: the header's byte length is shape × size
        precondition(out.count >= rows.count * rowLength)
        let rowBytes = rowLength * element.byteCount
        let chunkRows = max(1, (8 << 20) / max(1, rowBytes))
        var chunk = [UInt8](repeating: 0, count: min(rows.count, chunkRows) * rowBytes)
        var row = rows.lowerBound
        while row < rows.upperBound {
            let n = min(chunkRows, rows.upperBound - row)
            let count = n * rowLength
            try chunk.withUnsafeMutableBytes { raw in
                // raw holds at least n × rowBytes bytes: the chunk's rows, little-endian.
                try Self.preadFully(fd: fd, into: raw, count: n * rowBytes, at: start + row * rowBytes, path: path)
                let dst = UnsafeMutableBufferPointer(rebasing: out[((row - rows.lowerBound) * rowLength)...])
                switch element {
                case .F32:
                    for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .F16:
                    for i in 0..<count { dst[i] = HalfFloats.float(f16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                case .BF16:
                    for i in 0..<count { dst[i] = HalfFloats.float(bf16: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                }
            }
            row += n
        }
    }

    /// Fills `raw[0..<count]` from the file at `offset`, or a one-line error.
    static func preadFully(fd: Int32, into raw: UnsafeMutableRawBufferPointer, count: Int, at offset: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = pread(fd, raw.baseAddress.map { $0 + done }, count - done, off_t(offset + done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                throw UserError("\(path): cannot read at offset \(offset + done): " + (n == 0 ? "the file is truncated" : String(cString: strerror(errno))))
            }
            done += n
        }
    }
}
