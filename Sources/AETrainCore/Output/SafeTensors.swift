import Foundation

/// The `safetensors` format (what sparse-autoencoder tools exchange weights in): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
/// padded with spaces to a multiple of 8, then the tensors' bytes back to back.
public enum SafeTensors {
    /// Encodes float32 tensors, in the given order, with string metadata.
    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:]) -> Data {
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            entries.append("\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var data = Data()
        data.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for t in tensors {
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        return data
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension ModelWeights {
    /// `model.safetensors`: V (d, h), W (h, d), b (h), a (d) as F32, then `extra` (batchtopk's
    /// and jumprelu's `threshold` (h)).
    public func safetensors(metadata: [String: String] = [:], extra: [(name: String, shape: [Int], values: [Float])] = []) -> Data {
        SafeTensors.encode([("V", [shape.d, shape.h], V), ("W", [shape.h, shape.d], W), ("b", [shape.h], b), ("a", [shape.d], a)] + extra,
                           metadata: metadata)
    }
}
