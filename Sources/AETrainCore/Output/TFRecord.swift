import Foundation

/// TFRecord framing, the container of TensorBoard's event files:
///
///     uint64 length (little-endian)
///     uint32 masked CRC-32C of those 8 bytes
///     payload (length bytes)
///     uint32 masked CRC-32C of the payload
///
/// mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2³²), so that a CRC of data holding
/// CRCs is not degenerate.
public enum TFRecord {
    /// One record around `payload`.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        let length = littleEndian(UInt64(payload.count))
        out += length
        out += littleEndian(maskedCRC(length))
        out += payload
        out += littleEndian(maskedCRC(payload))
        return out
    }

    public static func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
        let c = CRC32C.checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xa282_ead8
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), table-driven; "123456789" → 0xe3069283.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82f6_3b78 : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}
