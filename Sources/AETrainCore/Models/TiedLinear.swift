import Dispatch

/// The sheet's Exercise 2: a linear autoencoder with tied weights, s = Wᵀx, x̂ = W s, W (d, k),
/// trained on centred data by the same distributed Adam loop. Its loss and gradient:
///
///     S = X W                     (mr, k)
///     R = S Wᵀ − X                (mr, d)
///     rec = (1/m) Σ_i ‖R_i‖²
///     ∂rec/∂W = (2/m) (Rᵀ S + Xᵀ R W)     (d, k)
public enum TiedLinear {
    /// Writes the gradient of this rank's rows into `grad` (d, k) and returns their Σ‖R_i‖².
    /// - s: (mr, k), r: (mr, d), rw: (mr, k) scratch.
    public static func lossAndGradient<T: BLASScalar>(
        grad: UnsafeMutablePointer<T>, s: UnsafeMutablePointer<T>, r: UnsafeMutablePointer<T>, rw: UnsafeMutablePointer<T>,
        x: UnsafePointer<T>, W: UnsafePointer<T>, mr: Int, m: Int, d: Int, k: Int
    ) -> T {
        guard mr > 0 else { grad.update(repeating: 0, count: d * k); return 0 }
        T.gemm(transA: false, transB: false, m: mr, n: k, k: d, alpha: 1, a: x, lda: d, b: W, ldb: k, beta: 0, c: s, ldc: k)
        T.gemm(transA: false, transB: true, m: mr, n: d, k: k, alpha: 1, a: s, lda: k, b: W, ldb: k, beta: 0, c: r, ldc: d)
        T.axpy(mr * d, -1, x, r)
        let sse = T.dot(mr * d, r, r)
        let scale = 2 / T(m)
        T.gemm(transA: true, transB: false, m: d, n: k, k: mr, alpha: scale, a: r, lda: d, b: s, ldb: k, beta: 0, c: grad, ldc: k)
        T.gemm(transA: false, transB: false, m: mr, n: k, k: d, alpha: 1, a: r, lda: d, b: W, ldb: k, beta: 0, c: rw, ldc: k)
        T.gemm(transA: true, transB: false, m: d, n: k, k: mr, alpha: scale, a: x, lda: d, b: rw, ldb: k, beta: 1, c: grad, ldc: k)
        return sse
    }
}

/// Trains a tied linear autoencoder with Adam on global batches, data-parallel.
public final class TiedLinearTrainer {
    public let shard: DatasetShard
    public let settings: TrainSettings
    let comm: Communicator
    /// W (d, k) row-major, then Adam's moments; the gradient buffer has one extra slot for Σ‖R‖².
    public private(set) var W: [Float]
    private var m1: [Float], m2: [Float], grad: [Float]
    private var s: [Float], r: [Float], rw: [Float], batch: [Float], indices: [Int32]
    private var sampler: GlobalBatchSampler
    public private(set) var iteration = 0

    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator) throws {
        try settings.validate()
        guard settings.batchSize <= shard.info.examples else {
            throw UserError("--batch-size \(settings.batchSize) is larger than the dataset (\(shard.info.examples) examples)")
        }
        guard settings.hidden <= shard.d else { throw UserError("--hidden \(settings.hidden) is larger than d = \(shard.d) for a tied linear autoencoder") }
        self.shard = shard; self.settings = settings; self.comm = comm
        let d = shard.d, k = settings.hidden, m = settings.batchSize
        var rng = Xoshiro256(seed: settings.seed)
        W = (0..<(d * k)).map { _ in Float(rng.normal() / Double(d).squareRoot()) }
        m1 = .init(repeating: 0, count: d * k); m2 = m1; grad = .init(repeating: 0, count: d * k + 1)
        s = .init(repeating: 0, count: m * k); rw = s; r = .init(repeating: 0, count: m * d); batch = r
        indices = .init(repeating: 0, count: m)
        sampler = GlobalBatchSampler(exampleCount: shard.info.examples, batchSize: m, seed: settings.seed)
    }

    /// One step; returns rec of this iteration's batch (before the update).
    public func step() throws -> Double {
        let d = shard.d, k = settings.hidden, m = settings.batchSize, rows = shard.rows
        indices.withUnsafeMutableBufferPointer { sampler.next(into: $0.baseAddress!) }  // m > 0
        var mr = 0
        for idx in indices where rows.contains(Int(idx)) {
            let src = (Int(idx) - rows.lowerBound) * d
            for j in 0..<d { batch[mr * d + j] = shard.values[src + j] }
            mr += 1
        }
        let sse = TiedLinear.lossAndGradient(grad: &grad, s: &s, r: &r, rw: &rw, x: batch, W: W, mr: mr, m: m, d: d, k: k)
        grad[d * k] = sse
        try grad.withUnsafeMutableBufferPointer { try comm.allreduceSum($0.baseAddress!, count: d * k + 1) }
        let rec = Double(grad[d * k]) / Double(m)
        iteration += 1
        Adam.step(params: &W, moment1: &m1, moment2: &m2, grads: grad, count: d * k, t: iteration, settings: settings.adam)
        return rec
    }
}
