/// FNV-1a, 64 bits: the one hash behind parameter checksums and checkpoint checksums.
public enum FNV1a {
    public static let offset: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01b3

    public static func hash<C: Sequence>(_ bytes: C, seed: UInt64 = offset) -> UInt64 where C.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }
}
