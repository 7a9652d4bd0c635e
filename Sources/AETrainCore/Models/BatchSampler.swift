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
    /// The persistent permutation and the generator: the sampler's whole state, for checkpoints.
    public internal(set) var permutation: [Int32]
    public internal(set) var rng: Xoshiro256

    public init(exampleCount: Int, batchSize: Int, seed: UInt64) {
        precondition(batchSize <= exampleCount && exampleCount <= Int(Int32.max))
        self.exampleCount = exampleCount
        self.batchSize = batchSize
        permutation = (0..<Int32(exampleCount)).map { $0 }
        // A stream of its own, so the sampler does not depend on how the weights were drawn.
        rng = Xoshiro256(seed: seed ^ 0x5A4D_504C_4552_0001)
    }

    /// Restores a state saved from `permutation` and `rng`.
    public mutating func restore(permutation: [Int32], rngState: [UInt64]) throws {
        guard permutation.count == exampleCount, rngState.count == 4,
              Set(permutation).count == exampleCount, permutation.allSatisfy({ $0 >= 0 && Int($0) < exampleCount })
        else { throw UserError("the checkpoint's sampler state does not fit \(exampleCount) examples") }
        self.permutation = permutation
        rng.state = rngState
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

extension GlobalBatchSampler {
    /// A checkpoint's sampler state (`ModelState.samplerRNG` and the "permutation" section).
    public mutating func restore(from checkpoint: Checkpoint, file: String) throws {
        let rng = (checkpoint.header.samplerRNG ?? []).compactMap { UInt64($0, radix: 16) }
        guard rng.count == 4 else { throw UserError("\(file): damaged checkpoint (sampler state)") }
        try restore(permutation: checkpoint.i32("permutation", count: exampleCount, path: file), rngState: rng)
    }
}
