import Dispatch

/// One data-parallel evaluation of the objective and its gradient on a global batch of m
/// examples. Each rank computes its equal piece of the batch (`BatchCut`, rows brought by
/// `BatchExchange`), as one or more chunks. After it returns, every rank holds the same full
/// gradient in `store.grads` (sharing memory: its own partial gradient, which the update sums
/// with the others', and the summed reduced terms).
///
///  1. encoder forward on each chunk → Z and its h column sums and active count
///  2. sum the column sums over the chunks and ranks: μ is a global-batch mean
///  3. entropy term and its per-unit gradient from μ, the same on every rank
///  4. decoder forward, residual, the chunk's partial sums of ‖R‖², Σ Z and ‖X‖²
///  5. decoder backward (dW, da)
///  6. encoder backward (dV, db)
///  7. sum the chunks' gradients and partial sums, then over the ranks
///  8. add the regularizer 2ηW to dW and compute reg, once, after the reduction (sharing
///     memory: reg before the barrier, 2ηW in the update of each rank's part)
///
/// Three ways to compute, one maths (`StepOptions.deterministic`, `ParameterStore.sharing`):
///  - fast (the default across nodes): a rank's piece is one chunk, BLAS uses the rank's threads, and MPI's
///    allreduce sums over ranks. With `overlap`, step 7 is split along the same flat buffer:
///    the allreduce of dW starts (non-blocking) right after step 5 and travels during step 6;
///    dV and the rest start after step 6, and the step waits for the three.
///  - shared memory (the default when every node has the same number of ranks, 2 or more): as
///    fast, but step 7 is no allreduce of the whole gradient: each rank's gradient is written
///    into memory its node's ranks map, and after a barrier each rank adds the node's
///    gradients over its own 1/L of the parameters (on several nodes, then sums that part
///    across the nodes: `ParameterStore.sumShared`), adds 2ηW there and applies Adam, in one
///    pass (`ParameterStore.adamStep`). For two ranks the sums are MPI's to the bit.
///  - deterministic: the batch is cut into fixed chunks (4 when the rank count divides 4),
///    each computed alone with single-threaded BLAS (the rank's threads take whole chunks), and
///    every sum over chunks, within a rank and then over ranks (`allreduceSumInFixedOrder`),
///    follows one binary tree, ((c0 + c1) + (c2 + c3)). The bits are then the same on 1, 2
///    and 4 ranks. No overlap.
///
/// Steps 4–6 take the dense or the sparse kernels (`KernelChoice`): a sparse model's Z is
/// mostly zero, and the sparse kernels touch only its nonzeros. The choice is one for the
/// whole step, from the batch's active count (known to every rank after step 2); a chunk with
/// more nonzeros than its sparse buffers hold takes the dense kernels.
///
/// Buffers are sized once; nothing is allocated per call.
///
/// Wall-clock time is split into local compute and exposed communication (time spent inside
/// MPI calls, not hidden behind compute), and a record of which units fired in any batch is
/// kept for the dead-unit count.
public final class DistributedStep<T: BLASScalar>: WorkerJob {
    /// Nanoseconds spent since the last `takeTimings()`.
    public private(set) var computeNanoseconds: UInt64 = 0
    public private(set) var communicationNanoseconds: UInt64 = 0
    /// Calls that took the sparse kernels since the last `takeTimings()`, and all calls.
    public private(set) var sparseCalls = 0
    public private(set) var calls = 0
    public let shape: ModelShape
    public let cut: BatchCut
    public let settings: ObjectiveSettings
    public let options: StepOptions
    public let store: ParameterStore<T>
    let comm: Communicator
    /// Records the step's spans (`--trace`) from this thread; nil: nothing is recorded. The
    /// deterministic step's chunks run on worker threads, which record nothing: their region
    /// is one span.
    public var trace: TraceRecorder?
    /// Threads that compute chunks at once (deterministic: the rank's BLAS threads).
    let workers: Int
    private let threads: WorkerThreads

    /// Every buffer below, in one allocation. Each view starts on a 64-byte boundary, so
    /// OpenBLAS's level-1 reductions (dot, asum) take the same path in every process and the
    /// logged terms are reproducible, not only the trajectory.
    private let scratch: Arena
    private let chunks: [ChunkScratch<T>]                // (L) this rank's chunks
    private let chunkRows: UnsafeMutablePointer<Int>     // (L) rows of each in this call
    private let chunkSparse: UnsafeMutablePointer<Bool>  // (L) took the sparse kernels in this call
    private let chunkActive: UnsafeMutablePointer<T>     // (L) Z's nonzeros in each (the column sums' last slot is summed over chunks)
    private let dVt: [UnsafeMutablePointer<T>]           // (workers) × (h, d) sparse path: dVᵀ; one element if never sparse
    private let columnSums: UnsafeMutablePointer<T>      // (L, sumStride): Σ_i Z_ij (h), then the active count
    private let sumStride: Int
    private let sumScratch: UnsafeMutablePointer<T>      // (reducedCount) deterministic, P > 1: a partner's values
    private let entCoefficient: UnsafeMutablePointer<T>  // (h)
    private let everActive: UnsafeMutablePointer<Bool>   // (h) fired in some batch since the last count

    /// - cut: how the global batch is shared (`options.deterministic` must match its `fixedOrder`).
    public init(store: ParameterStore<T>, cut: BatchCut, settings: ObjectiveSettings, comm: Communicator,
                options: StepOptions = StepOptions()) {
        precondition(cut.fixedOrder == options.deterministic && cut.ranks == comm.size && cut.rank == comm.rank)
        self.shape = store.layout.shape
        self.cut = cut
        self.settings = settings
        self.options = options
        self.store = store
        self.comm = comm
        let (d, h) = (shape.d, shape.h)
        let local = cut.localChunks.count, rows = cut.maxChunkRows
        workers = options.deterministic ? max(1, min(options.threads, local)) : 1
        threads = WorkerThreads(count: workers)
        // The sparse path only runs with at most `capacity` nonzeros per chunk, so that is all it needs.
        let capacity: Int = switch options.kernels {
        case .dense: 0
        case .sparse: rows * h
        case .auto: min(rows * h, Int((options.sparseBelow * Double(rows * h)).rounded(.up)))
        }
        sumStride = (h + 1 + 15) / 16 * 16
        let fixedSums = options.deterministic && comm.size > 1
        var size = Arena.Size()
        for i in 0..<local {
            ChunkScratch<T>.reserve(&size, rows: rows, shape: shape, capacity: capacity, reducedCount: store.reducedCount, ownPartial: i > 0)
        }
        size.add(Int.self, local); size.add(Bool.self, local); size.add(T.self, local)
        for _ in 0..<workers { size.add(T.self, capacity > 0 ? h * d : 1) }
        size.add(T.self, local * sumStride); size.add(T.self, fixedSums ? store.reducedCount : 1)
        size.add(T.self, h); size.add(Bool.self, h)
        scratch = Arena(size)
        chunks = (0..<local).map { [scratch] i in
            ChunkScratch(rows: rows, shape: store.layout.shape, capacity: capacity, arena: scratch,
                         partial: i == 0 ? store.grads : nil, reducedCount: store.reducedCount)
        }
        chunkRows = scratch.take(Int.self, local)
        chunkSparse = scratch.take(Bool.self, local)
        chunkActive = scratch.take(T.self, local)
        dVt = (0..<workers).map { [scratch] _ in scratch.take(T.self, capacity > 0 ? h * d : 1) }
        columnSums = scratch.take(T.self, local * sumStride)
        sumScratch = scratch.take(T.self, fixedSums ? store.reducedCount : 1)
        entCoefficient = scratch.take(T.self, h)
        everActive = scratch.take(Bool.self, h)
    }

    /// One process, up to `maxRows` rows as one chunk (`lossAndGradient(x:mr:m:stop:)`).
    public convenience init(store: ParameterStore<T>, maxRows: Int, settings: ObjectiveSettings, comm: Communicator,
                            options: StepOptions = StepOptions()) {
        precondition(comm.size == 1 && !options.deterministic)
        self.init(store: store, cut: .single(rows: maxRows), settings: settings, comm: comm, options: options)
    }

    /// Units that fired in none of the global batches since the last call (the same on every
    /// rank: it is read from the reduced column sums); starts a new window.
    public func takeDeadUnitCount() -> Int {
        var dead = 0
        for j in 0..<shape.h {
            if !everActive[j] { dead += 1 }
            everActive[j] = false
        }
        return dead
    }

    /// (compute, communication) seconds and the fraction of calls on the sparse kernels since
    /// the last call; starts a new window.
    public func takeTimings() -> (compute: Double, communication: Double, sparseFraction: Double) {
        defer { computeNanoseconds = 0; communicationNanoseconds = 0; sparseCalls = 0; calls = 0 }
        return (Double(computeNanoseconds) / 1e9, Double(communicationNanoseconds) / 1e9,
                calls > 0 ? Double(sparseCalls) / Double(calls) : 0)
    }

    /// The parallel region under way and its inputs (deterministic, several workers).
    private enum Region { case forward, backward, add(from: UnsafeMutablePointer<T>, into: UnsafeMutablePointer<T>) }
    private var region = Region.forward
    private var regionBatch: UnsafePointer<T>?
    private var regionM = 0
    private var regionSparse = false

    /// Shared memory: ‖W‖², taken before the gradient barrier (after it, ranks update W).
    private var sharedSquaredNorm: T = 0

    /// True after a call in which some rank passed `stop: true`.
    public private(set) var stopRequested = false

    /// - x: this rank's piece of the global batch, chunk by chunk as `BatchExchange` lays it
    ///   out (`cut.slotStride` elements apart, (rows, d) each); m: the global batch size.
    /// - stop: this rank was asked to stop (a signal); the answer is in `stopRequested`.
    public func lossAndGradient(batch x: UnsafePointer<T>, stop: Bool = false) throws -> ObjectiveTerms {
        let first = cut.localChunks.lowerBound
        for i in 0..<chunks.count { chunkRows[i] = cut.chunk(first + i).count }
        return try evaluate(x, m: cut.batchSize, stop: stop)
    }

    /// One process: `x` (mr, d) rows of a batch of m (the gradient checks' entry).
    public func lossAndGradient(x: UnsafePointer<T>, mr: Int, m: Int, stop: Bool = false) throws -> ObjectiveTerms {
        precondition(chunks.count == 1 && mr <= cut.maxChunkRows && m > 0)
        chunkRows[0] = mr
        return try evaluate(x, m: m, stop: stop)
    }

    private func evaluate(_ x: UnsafePointer<T>, m: Int, stop: Bool) throws -> ObjectiveTerms {
        let (d, h) = (shape.d, shape.h)
        let s = store
        let local = chunks.count
        let fixed = options.deterministic
        // Deterministic: single-threaded products, so that a chunk's bits do not depend on
        // how many threads its rank has (OpenBLAS splits a product differently per thread count).
        let blasThreads = fixed ? BLASThreads.current : 1
        if blasThreads != 1 { BLASThreads.set(1) }
        defer { if blasThreads != 1 { BLASThreads.set(blasThreads) } }

        var clock = DispatchTime.now().uptimeNanoseconds
        func lap(_ counter: inout UInt64) {
            let now = DispatchTime.now().uptimeNanoseconds
            counter += now - clock
            clock = now
        }
        /// Lets the reductions in flight advance; the time it takes is exposed communication.
        func poke() {
            guard options.overlap else { return }
            lap(&computeNanoseconds)
            trace?.begin(.progress)
            comm.progressReductions()
            trace?.end()
            lap(&communicationNanoseconds)
        }

        // Shared memory: set-up's writes, or a skipped update, are waited for before θ is read.
        if let shared = s.sharing, s.needsSynchronize {
            try shared.segment.synchronize()
            s.needsSynchronize = false
            lap(&communicationNanoseconds)
        }

        // 1–3: forward through the encoder; μ from the whole batch.
        regionBatch = x
        regionM = m
        trace?.begin(.encoderForward)
        inParallel(.forward)
        FixedOrder.tree(columnSums, count: h + 1, stride: sumStride, chunks: local)
        trace?.end()
        lap(&computeNanoseconds)
        trace?.begin(.columnSumsAllreduce)
        if fixed {
            try comm.allreduceSumInFixedOrder(columnSums, count: h + 1, scratch: sumScratch)
        } else {
            try comm.allreduceSum(columnSums, count: h + 1)
        }
        trace?.end()
        lap(&communicationNanoseconds)
        trace?.begin(.entropy)
        for j in 0..<h where columnSums[j] > 0 { everActive[j] = true }
        let ent = Objective.entropy(
            coefficient: entCoefficient, columnSums: columnSums, m: m, h: h,
            epsilon: T(settings.epsilon), floor: T(settings.entropyFloor))
        let sparse = useSparse(activeCount: Double(columnSums[h]), rows: m)
        trace?.end()

        // 4–7: each chunk's gradient, summed over the chunks, then over the ranks.
        if fixed {
            regionSparse = sparse
            trace?.begin(.chunksBackward)
            inParallel(.backward)
            addPartials()
            trace?.end()
            s.setReduced(.stopRequest, stop ? 1 : 0)
            lap(&computeNanoseconds)
            trace?.begin(.gradientAllreduce)
            try comm.allreduceSumInFixedOrder(s.grads, count: s.reducedCount, scratch: sumScratch)
            trace?.end()
        } else if let shared = s.sharing {
            // Shared memory: this rank's gradient is written where every rank reads it; after
            // the barrier, each sums its own part of the parameters (and Adam updates it).
            backward(chunk: 0, x: x, m: m, sparse: sparse, dVt: dVt[0], trace: trace, afterDecoder: {}, progress: {})
            s.setReduced(.stopRequest, stop ? 1 : 0)
            // ‖W‖² now, while no rank updates W.
            trace?.begin(.regularizer)
            sharedSquaredNorm = T.squaredNorm(s.W, count: h * d)
            trace?.end()
            lap(&computeNanoseconds)
            trace?.begin(.gradientBarrier)
            try shared.segment.synchronize()
            trace?.end()
            lap(&communicationNanoseconds)
            if shared.nodes > 1 {
                trace?.begin(.gradientAllreduce)  // the node's sum of this rank's part, then across the nodes
                try s.sumShared(comm: comm)
                trace?.end()
            } else {
                try s.sumShared(comm: comm)
            }
        } else {
            try backward(chunk: 0, x: x, m: m, sparse: sparse, dVt: dVt[0], trace: trace, afterDecoder: {
                guard options.overlap else { return }
                lap(&computeNanoseconds)
                trace?.begin(.startAllreduce)
                try comm.startAllreduceSum(s.dW, count: h * d)
                trace?.end()
                lap(&communicationNanoseconds)
            }, progress: poke)
            s.setReduced(.stopRequest, stop ? 1 : 0)
            lap(&computeNanoseconds)
            if options.overlap {
                trace?.begin(.finishAllreduces)
                let rest = s.layout.b.lowerBound
                try comm.startAllreduceSum(s.dV, count: d * h)
                try comm.startAllreduceSum(s.grads + rest, count: s.reducedCount - rest)
                try comm.finishReductions()
            } else {
                trace?.begin(.gradientAllreduce)
                try comm.allreduceSum(s.grads, count: s.reducedCount)
            }
            trace?.end()
        }
        lap(&communicationNanoseconds)
        calls += 1
        if (0..<local).allSatisfy({ chunkSparse[$0] }) { sparseCalls += 1 }

        // 8: the regularizer, once (shared memory: its gradient is added by the update, which
        // sums the ranks' gradients; ‖W‖² from above).
        stopRequested = s.reduced(.stopRequest) > 0
        let reg: T
        if s.sharing != nil {
            s.regularizerGradient = (s.layout.W, 2 * T(settings.eta))
            reg = sharedSquaredNorm
        } else {
            trace?.begin(.regularizer)
            reg = Objective.regularizer(dW: s.dW, W: s.W, eta: T(settings.eta), count: h * d)
            trace?.end()
        }
        lap(&computeNanoseconds)
        let sst = Double(s.reduced(.squaredNorm))
        return ObjectiveTerms(
            rec: Double(s.reduced(.squaredError)) / Double(m),
            spa: Double(s.reduced(.activationSum)) / Double(m),
            ent: Double(ent), reg: Double(reg),
            l0: Double(s.reduced(.activeCount)) / Double(m),
            explainedVariance: sst > 0 ? 1 - Double(s.reduced(.squaredError)) / sst : 0)
    }

    /// Steps 4–6 for local chunk i into its partial gradient (the data terms and partial sums).
    /// - trace: where this thread records its spans (nil on the worker threads).
    /// - afterDecoder: called between the decoder's and the encoder's backward products.
    private func backward(chunk i: Int, x: UnsafePointer<T>, m: Int, sparse wanted: Bool, dVt: UnsafeMutablePointer<T>,
                          trace: TraceRecorder? = nil, afterDecoder: () throws -> Void, progress: () -> Void) rethrows {
        let (d, h) = (shape.d, shape.h)
        let c = chunks[i], mr = chunkRows[i], layout = store.layout
        let p = c.partial, W = store.W, a = store.a
        let dV = p + layout.V.lowerBound, dW = p + layout.W.lowerBound
        let db = p + layout.b.lowerBound, da = p + layout.a.lowerBound
        let lambda = T(settings.lambda)
        trace?.begin(.decoderForward)  // with the sparse kernels' gather of Z's nonzeros
        let sparse = wanted && c.active.gather(z: c.z, mr: mr, h: h)
        chunkSparse[i] = sparse
        let (sse, l1): (T, T)
        if sparse {
            (sse, l1) = Objective.sparseDecoderForward(g: c.g, active: c.active, x: x, W: W, a: a, mr: mr, m: m, d: d)
            trace?.end(); trace?.begin(.decoderBackward)
            Objective.sparseDecoderBackward(dW: dW, da: da, active: c.active, g: c.g, mr: mr, d: d, h: h)
        } else {
            (sse, l1) = Objective.decoderForward(g: c.g, z: c.z, x: x, W: W, a: a, mr: mr, m: m, d: d, h: h, trace: trace)
            trace?.end(); trace?.begin(.decoderBackward)
            Objective.decoderBackward(dW: dW, da: da, g: c.g, z: c.z, mr: mr, d: d, h: h, trace: trace)
        }
        trace?.end()
        try afterDecoder()
        trace?.begin(.encoderBackward)
        if sparse {
            Objective.sparseEncoderBackward(
                dV: dV, db: db, dVt: dVt, active: c.active, g: c.g, x: x, W: W,
                entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h)
        } else {
            Objective.encoderBackward(
                dV: dV, db: db, gz: c.gz, g: c.g, z: c.z, x: x, W: W,
                entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h, progress: progress, trace: trace)
        }
        trace?.end()
        let sums = p + layout.count
        sums[ReducedTerm.squaredError.rawValue] = sse
        sums[ReducedTerm.activationSum.rawValue] = l1
        sums[ReducedTerm.activeCount.rawValue] = chunkActive[i]
        sums[ReducedTerm.squaredNorm.rawValue] = mr > 0 ? T.dot(mr * d, x, x) : 0
        sums[ReducedTerm.stopRequest.rawValue] = 0
    }

    /// Sums the local chunks' partial gradients into the first (the store's), in the tree
    /// order, each addition split over the workers.
    private func addPartials() {
        var span = 1
        while span < chunks.count {
            for i in Swift.stride(from: 0, to: chunks.count - span, by: 2 * span) {
                inParallel(.add(from: chunks[i + span].partial, into: chunks[i].partial))
            }
            span *= 2
        }
    }

    /// Runs `region` on the workers (`work`).
    private func inParallel(_ region: Region) {
        self.region = region
        if workers == 1 { work(0) } else { threads.run(self) }
    }

    /// Worker w's part of the current region: chunks w, w + workers, …; or its slice of an addition.
    /// The helper threads call it through `WorkerJob`, which reaches the generic code: the
    /// float32 specialization is made explicit, or every element-wise loop would go through
    /// the generic witnesses (measured: the deterministic step 3× slower).
    @_specialize(where T == Float)
    func work(_ w: Int) {
        let (d, h) = (shape.d, shape.h)
        let s = store, stride = cut.slotStride(d: d)
        guard let x = regionBatch else { return }
        switch region {
        case .forward:
            for i in Swift.stride(from: w, to: chunks.count, by: workers) {
                let sums = columnSums + i * sumStride
                chunkActive[i] = Objective.encoderForward(z: chunks[i].z, columnSums: sums, x: x + i * stride, V: s.V, b: s.b,
                                                          mr: chunkRows[i], d: d, h: h, trace: workers == 1 ? trace : nil)
                sums[h] = chunkActive[i]
            }
        case .backward:
            for i in Swift.stride(from: w, to: chunks.count, by: workers) {
                backward(chunk: i, x: x + i * stride, m: regionM, sparse: regionSparse, dVt: dVt[w], afterDecoder: {}, progress: {})
            }
        case .add(let from, let into):
            let n = store.reducedCount
            let lo = n * w / workers, hi = n * (w + 1) / workers
            FixedOrder.add(from + lo, into: into + lo, count: hi - lo)
        }
    }

    private func useSparse(activeCount: Double, rows: Int) -> Bool {
        switch options.kernels {
        case .dense: false
        case .sparse: true
        case .auto: rows > 0 && activeCount <= options.sparseBelow * Double(rows * shape.h)
        }
    }
}
