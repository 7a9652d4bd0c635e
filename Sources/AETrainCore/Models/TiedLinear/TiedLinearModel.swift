import Foundation

/// Trains a tied linear autoencoder (`TiedLinear`) with Adam on global batches,
/// data-parallel, as the sparse autoencoder is trained: every rank computes an equal piece of
/// each global batch (`BatchCut`, rows brought by `BatchExchange`), then one allreduce. At the
/// end it compares the learned directions with the principal subspace (the sheet's Exercise 2
/// says they span it).
public final class TiedLinearModel: AdamTrainedModel {
    public let shard: DatasetShard
    public let settings: TrainSettings
    let comm: Communicator
    /// W (d, k) and Adam's moments; the gradient is followed by Σ‖R‖², Σ‖x‖² and the stop flag.
    public let store: ParameterStore<Float>
    public var shape: ModelShape { store.layout.shape }
    public let columns: [LogColumn] = [.rec, .ev, .comp, .comm, .opt]
    public var banner: String { "tied linear autoencoder, k = \(settings.hidden), lr = \(settings.adam.learningRate)" }

    private enum Slot: Int, CaseIterable { case squaredError, squaredNorm, stopRequest }
    public var sampler: GlobalBatchSampler
    /// This rank's equal piece of each batch (one chunk), and what brings it its rows.
    private let cut: BatchCut
    private let exchange: BatchExchange
    private let scratch: Arena
    private let indices: UnsafeMutablePointer<Int32>  // (m)
    private let batch: UnsafeMutablePointer<Float>    // (m, d) this rank's piece of the batch (held-out: up to m rows)
    private let s: UnsafeMutablePointer<Float>        // (m, k)
    private let r: UnsafeMutablePointer<Float>        // (m, d)
    private let rw: UnsafeMutablePointer<Float>       // (m, k)
    private var compute: UInt64 = 0, communication: UInt64 = 0, optimizer: UInt64 = 0

    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator) throws {
        try settings.validate(for: .tiedLinear)
        let d = shard.d, k = settings.hidden, m = settings.batchSize
        guard m <= shard.trainingCount else {
            throw UserError("⟨batch-size⟩ \(m) is larger than \(shard.trainingDescription)")
        }
        guard k <= d else { throw UserError("⟨hidden⟩ \(k) is larger than d = \(d) for a tied linear autoencoder") }
        // The batch's rows travel in one MPI_Alltoallv, whose byte counts and offsets are 32-bit.
        guard m * d <= Int(Int32.max) / MemoryLayout<Float>.stride else {
            throw UserError("⟨batch-size⟩ \(m) with d = \(d): the batch's rows are \(m * d * MemoryLayout<Float>.stride) bytes, beyond the 2 GiB one exchange between ranks carries; use a smaller batch")
        }
        let shape = try ModelShape(checkingD: d, h: k)
        var need = MemoryEstimate()
        need.add(bytes: shard.bytes)
        need.add(Float.self, 4, d, k)                              // W, its gradient, Adam's moments
        need.add(Float.self, 2, m, d); need.add(Float.self, 2, m, k)  // batch, R; S, R W
        need.add(Float.self, m, d)                                  // the exchange's rows
        need.add(Int32.self, shard.info.examples)                   // the sampler
        try MemoryBudget.check(need, for: "a tied linear autoencoder with k = \(k) on d = \(d) pixels and batch \(m) (parameters ×4, scratch and this rank's data)", comm: comm)
        _ = try Sizes.count([d, k + 1], naming: "⟨hidden⟩ \(k) with d = \(d) pixels")
        _ = try Sizes.count([m, d], naming: "⟨batch-size⟩ \(m) with d = \(d)")
        _ = try Sizes.count([shard.info.examples], naming: "\(shard.info.source): the number of examples")
        self.shard = shard; self.settings = settings; self.comm = comm
        store = ParameterStore(layout: ParameterLayout(shape: shape, tensors: [("W", [d, k])]),
                               reducedSlots: Slot.allCases.count)
        var rng = Xoshiro256(seed: settings.seed)
        for i in 0..<(d * k) { store.params[i] = Float(rng.normal() / Double(d).squareRoot()) }
        sampler = GlobalBatchSampler(exampleCount: shard.trainingCount, batchSize: m, seed: settings.seed)
        cut = BatchCut(batchSize: m, ranks: comm.size, rank: comm.rank, fixedOrder: false)
        exchange = BatchExchange(cut: cut, shard: shard, comm: comm)
        var size = Arena.Size()
        size.add(Int32.self, m); size.add(Float.self, max(m * d, exchange.batchElements)); size.add(Float.self, m * k)
        size.add(Float.self, m * d); size.add(Float.self, m * k)
        scratch = Arena(size)
        indices = scratch.take(Int32.self, m); batch = scratch.take(Float.self, max(m * d, exchange.batchElements))
        s = scratch.take(Float.self, m * k)
        r = scratch.take(Float.self, m * d); rw = scratch.take(Float.self, m * k)
    }

    public func iterate(_ iteration: Int, stop: Bool) throws -> Iteration {
        let d = shard.d, k = settings.hidden, m = settings.batchSize
        var clock = Stopwatch()
        sampler.next(into: indices)
        try exchange.fill(indices: indices, into: batch)
        clock.lap(&communication)
        let mr = cut.chunk(cut.localChunks.lowerBound).count
        let sse = TiedLinear.lossAndGradient(grad: store.grads, s: s, r: r, rw: rw, x: batch, W: store.params, mr: mr, m: m, d: d, k: k)
        store.setReduced(slot: Slot.squaredError.rawValue, sse)
        store.setReduced(slot: Slot.squaredNorm.rawValue, mr > 0 ? Float.dot(mr * d, batch, batch) : 0)
        store.setReduced(slot: Slot.stopRequest.rawValue, stop ? 1 : 0)
        clock.lap(&compute)
        try comm.allreduceSum(store.grads, count: store.reducedCount)
        clock.lap(&communication)
        let rec = Double(store.reduced(slot: Slot.squaredError.rawValue)) / Double(m)
        let sst = Double(store.reduced(slot: Slot.squaredNorm.rawValue))
        var record = LogRecord(iteration: iteration, rec: rec, loss: rec)
        record.explainedVariance = sst > 0 ? 1 - rec * Double(m) / sst : nil
        if record.firstNonFinite == nil { Adam.step(store, settings: settings.adam) }
        clock.lap(&optimizer)
        return Iteration(record: record, stopRequested: store.reduced(slot: Slot.stopRequest.rawValue) > 0)
    }

    public func closeWindow(_ record: inout LogRecord) {
        record.computeSeconds = Double(compute) / 1e9
        record.communicationSeconds = Double(communication) / 1e9
        record.optimizerSeconds = Double(optimizer) / 1e9
        compute = 0; communication = 0; optimizer = 0
    }

    public var evaluatesHeldOut: Bool { true }

    /// rec and SST over `rows`, in chunks of the batch size (the batch buffers are free
    /// between iterations). Every direction is active: no L0 or dead units.
    public func heldOutSums(of data: DatasetShard, rows: [Int]) -> HeldOutSums {
        let d = shard.d, k = settings.hidden, m = settings.batchSize
        var sums = HeldOutSums(units: 0, d: d)
        var start = 0
        while start < rows.count {
            let mr = min(m, rows.count - start)
            for i in 0..<mr { data.copyRow(rows[start + i], to: batch + i * d) }
            Float.gemm(transA: false, transB: false, m: mr, n: k, k: d, alpha: 1, a: batch, lda: d, b: store.params, ldb: k, beta: 0, c: s, ldc: k)
            Float.gemm(transA: false, transB: true, m: mr, n: d, k: k, alpha: 1, a: s, lda: k, b: store.params, ldb: k, beta: 0, c: r, ldc: d)
            Float.axpy(mr * d, -1, batch, r)
            sums.squaredError += Double(Float.dot(mr * d, r, r))
            sums.addSquares(rows: batch, count: mr)
            sums.examples += Double(mr)
            start += mr
        }
        return sums
    }

    /// s = Wᵀx of this rank's examples `rows`: (rows.count, k).
    public func codes(ofRows rows: Range<Int>) -> [Float] {
        let d = shard.d, k = settings.hidden
        var codes = [Float](repeating: 0, count: rows.count * k)
        shard.withRows(rows) { x in
            Float.gemm(transA: false, transB: false, m: rows.count, n: k, k: d, alpha: 1, a: x, lda: d, b: store.params, ldb: k,
                       beta: 0, c: &codes, ldc: k)
        }
        return codes
    }

    /// W.npy (d, k) — the transpose of the autoencoder's (h, d) W — and the cosine of each
    /// learned direction to the span of the first k principal components.
    public func outputs() throws -> ModelOutputs {
        let d = shard.d, k = settings.hidden
        let W = store.values("W")
        let pca = try PrincipalComponents.compute(shard, components: k, comm: comm)
        let cosines = pca.subspaceCosines(W, d: d, k: k)
        let norms = (0..<k).map { j in (0..<d).reduce(0.0) { $0 + Double(W[$1 * k + j] * W[$1 * k + j]) }.squareRoot() }
        var out = ModelOutputs()
        out.arrays = [("W.npy", [d, k], W), ("subspace_cosines.npy", [k], cosines.map(Float.init))]
        out.filters = (0..<min(64, k)).map { j in (0..<d).map { W[$0 * k + j] } }
        out.lines = ["cosine of each learned direction to the span of the first \(k) principal components: "
                     + cosines.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: " ") + (k > 8 ? " …" : "")
                     + String(format: " (min %.4f); ‖w‖: mean %.4f", cosines.min() ?? 0, norms.reduce(0, +) / Double(k))]
        return out
    }
}
