import Foundation

/// Tensors of several dtypes (the CSR arrays of sparse codes: I64 or I32 offsets, I32
/// indices, F32 values), and headers for files whose tensor bytes are written later, in
/// pieces, at the offsets the header gives.
extension SafeTensors {
    public enum DType: String, Sendable {
        case F32, I32, I64
        public var byteCount: Int { self == .I64 ? 8 : 4 }
    }

    /// One tensor's name, dtype and shape, without its bytes.
    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public init(_ name: String, _ dtype: DType, _ shape: [Int]) { self.name = name; self.dtype = dtype; self.shape = shape }
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteCount }
    }

    /// The 8-byte length and the padded JSON header for `entries`, whose bytes follow back to
    /// back in the given order; and where each tensor's bytes start, counted from the file's start.
    public static func header(_ entries: [Entry], metadata: [String: String] = [:]) -> (bytes: Data, offsets: [Int]) {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0, starts: [Int] = []
        for e in entries {
            fields.append("\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + e.byteCount)]}")
            starts.append(offset)
            offset += e.byteCount
        }
        var json = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: json)
        return (data, starts.map { $0 + data.count })
    }

    /// A whole file of tensors given as little-endian bytes (each `entry.byteCount` long).
    public static func encode(_ tensors: [(entry: Entry, bytes: Data)], metadata: [String: String] = [:]) -> Data {
        precondition(tensors.allSatisfy { $0.bytes.count == $0.entry.byteCount }, "SafeTensors.encode: byte counts do not match the shapes")
        var data = header(tensors.map(\.entry), metadata: metadata).bytes
        for t in tensors { data.append(t.bytes) }
        return data
    }

    /// The little-endian bytes of `values`.
    public static func bytes<T: FixedWidthInteger>(_ values: [T]) -> Data {
        var data = Data(capacity: values.count * MemoryLayout<T>.size)
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    public static func bytes(_ values: [Float]) -> Data { bytes(values.map(\.bitPattern)) }
}
