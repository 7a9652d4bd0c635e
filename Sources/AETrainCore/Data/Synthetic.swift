/// Deterministic face-sized test images, generated row by row so that each rank makes only
/// its own shard: `synthetic:N,H,W`. Each image is a smooth random pattern (a few plane waves
/// and a blob) plus a little noise, drawn from a generator seeded by the row index and the
/// run's seed, so any row is the same whichever rank makes it.
public struct SyntheticSpec: Equatable, Sendable {
    public var examples: Int
    public var shape: ImageShape
    public init(examples: Int, shape: ImageShape) { self.examples = examples; self.shape = shape }

    /// Parses `synthetic:N,H,W`; nil when the text does not start with `synthetic:`.
    public static func parse(_ text: String) throws -> SyntheticSpec? {
        guard text.hasPrefix("synthetic:") else { return nil }
        let parts = text.dropFirst("synthetic:".count).split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let n = parts[0], let h = parts[1], let w = parts[2], n > 0, h > 0, w > 0 else {
            throw UserError("bad synthetic data spec '\(text)': expected synthetic:N,H,W with positive integers, e.g. synthetic:13233,37,28")
        }
        let spec = SyntheticSpec(examples: n, shape: ImageShape(height: h, width: w))
        try spec.check()
        return spec
    }

    /// Checks that N·H·W float32 values have a representable size (the spec is then safe to
    /// size buffers from; whether they fit in memory is `MemoryBudget`'s question).
    public func check() throws {
        _ = try Sizes.product([examples, shape.height, shape.width, MemoryLayout<Float>.stride],
                              naming: "synthetic data \(examples),\(shape.height),\(shape.width) (N·H·W float32 values)")
    }

    /// Writes row `index` (H·W pixels) into `out`.
    public func generate(row index: Int, seed: UInt64, into out: UnsafeMutablePointer<Float>) {
        var rng = Xoshiro256(seed: seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(index))
        let (h, w) = (shape.height, shape.width)
        var waves: [(fy: Double, fx: Double, phase: Double, amp: Double)] = []
        for _ in 0..<3 {
            waves.append((rng.unit() * 0.5, rng.unit() * 0.5, rng.unit() * 2 * .pi, rng.normal()))
        }
        let cy = rng.unit() * Double(h), cx = rng.unit() * Double(w)
        let radius = 2 + rng.unit() * Double(min(h, w)) / 3
        for y in 0..<h {
            for x in 0..<w {
                var v = 0.0
                for wv in waves { v += wv.amp * cos(wv.fy * Double(y) + wv.fx * Double(x) + wv.phase) }
                let r2 = (Double(y) - cy) * (Double(y) - cy) + (Double(x) - cx) * (Double(x) - cx)
                v += 2 * exp(-r2 / (2 * radius * radius))
                v += 0.1 * rng.normal()
                out[y * w + x] = Float(v)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
