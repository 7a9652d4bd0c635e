/// Draws the global batch of each step: m distinct example indices out of N, the same on
/// every rank because every rank runs the same generator from the same seed (the sheet's
/// `numpy.random.permutation(N)[:100]`, without materializing a new permutation per step).
///
/// Each step is a partial Fisher–Yates shuffle of the first m slots of a persistent
/// permutation: whatever order the permutation is in, the m slots end up a uniformly random
/// m-subset in random order. O(m) per step, N Int32 of state.
public struct GlobalBatchSampler {
    public let exampleCount: Int
    public let batchSize: Int
    private var permutation: [Int32]
    private var rng: Xoshiro256

    public init(exampleCount: Int, batchSize: Int, seed: UInt64) {
        precondition(batchSize <= exampleCount && exampleCount <= Int(Int32.max))
        self.exampleCount = exampleCount
        self.batchSize = batchSize
        permutation = (0..<Int32(exampleCount)).map { $0 }
        // A stream of its own, so the sampler does not depend on how the weights were drawn.
        rng = Xoshiro256(seed: seed ^ 0x5A4D_504C_4552_0001)
    }

    /// Writes the next batch's indices into `out` (batchSize).
    public mutating func next(into out: UnsafeMutablePointer<Int32>) {
        permutation.withUnsafeMutableBufferPointer { p in
            for i in 0..<batchSize {
                let j = i + rng.below(exampleCount - i)
                p.swapAt(i, j)
                out[i] = p[i]
            }
        }
    }
}
