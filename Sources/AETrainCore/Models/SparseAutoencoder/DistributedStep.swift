/// One data-parallel evaluation of the objective and its gradient on a global batch of m
/// examples. Each rank computes its equal piece of the batch (`BatchCut`, rows brought by
/// `BatchExchange`), as one or more chunks (`ChunkSchedule`). After it returns, every rank
/// holds the same full gradient in `store.grads` (sharing memory: its own partial gradient,
/// which the update sums with the others', and the summed reduced terms).
///
///  1. encoder forward on each chunk → Z and its h column sums and active count
///  2. sum the column sums over the chunks and ranks: μ is a global-batch mean
///  3. entropy term and its per-unit gradient from μ, the same on every rank
///  4. decoder forward, residual, the chunk's partial sums of ‖R‖², Σ Z and ‖X‖²
///  5. decoder backward (dW, da)
///  6. encoder backward (dV, db)
///  7. sum the chunks' gradients and partial sums, then over the ranks
///  8. the regularizer ‖W‖² and its gradient 2ηW, once, after the reduction; with unit-norm
///     decoder rows, dW's rows projected onto their tangent spaces (`UnitNormDecoder`)
///  9. (`update`) Adam; with unit-norm decoder rows, W's rows renormalized
///
/// How the ranks sum (steps 2, 7, 8 and 9) is one `GradientReduction`, chosen once when the
/// step is built: the allreduce, with or without overlap, shared memory or the fixed order of
/// `--deterministic`; none of them changes the maths. The step's phases are timed and traced
/// from the outside (`StepClock`).
///
/// Steps 4–6 take the dense or the sparse kernels (`KernelChoice`): a sparse model's Z is
/// mostly zero, and the sparse kernels touch only its nonzeros. The choice is one for the
/// whole step, from the batch's active count (known to every rank after step 2); a chunk with
/// more nonzeros than its sparse buffers hold takes the dense kernels.
///
/// topk, batchtopk and jumprelu (`architecture`) take the same outline with their own
/// activation in step 1 (batchtopk's selection over the global batch after it, 1b), their
/// dead-latent record and AuxK's scale in step 3, and their own decoder and backward in 4–6
/// (`DistributedStep+Architectures.swift`); relu's phases are untouched.
///
/// Buffers are sized once; nothing is allocated per call. A record of which units fired in
/// any batch is kept for the dead-unit count.
public final class DistributedStep<T: BLASScalar>: WorkerJob {
    /// Calls that took the sparse kernels since the last `takeTimings()`, and all calls.
    public private(set) var sparseCalls = 0
    public private(set) var calls = 0
    public let shape: ModelShape
    public let cut: BatchCut
    public let settings: ObjectiveSettings
    /// λ as the step reads it: `settings.lambda`, unless a schedule sets it (`--lambda-warmup`).
    public var lambda: Double
    /// W's rows are kept at unit norm (`--decoder-norm unit`).
    public let unitNormDecoder: Bool
    public let options: StepOptions
    public let store: ParameterStore<T>
    /// How the ranks sum the step's results and update θ.
    public let reduction: any GradientReduction<T>
    /// Times and traces the phases.
    public let clock = StepClock()
    /// Records the step's spans (`--trace`) from this thread; nil: nothing is recorded.
    public var trace: TraceRecorder? {
        get { clock.trace }
        set { clock.trace = newValue }
    }
    let schedule: ChunkSchedule
    /// The rank's threads (its BLAS thread count): the deterministic step's chunks, and the
    /// optimizer's passes.
    let loop: ParallelLoop
    /// The threads of the passes inside a chunk (`ChunkSchedule.kernelThreads`): `loop` in the
    /// fast modes, where a chunk has the rank to itself; one thread in the deterministic step.
    let kernelLoop: ParallelLoop
    /// The dense products in bf16 (`StepOptions.precision`); nil: the scalar type's BLAS.
    let bf16: BF16Products?
    /// The architectures' passes on `kernelLoop` (made last in `init`: it refers back to the step).
    private(set) var kernels: ChunkKernels<T>!
    /// topk, batchtopk, jumprelu; nil: relu (the sheet).
    public let architecture: ArchitectureSettings?
    /// AuxK's k_aux (0: none).
    let kAux: Int
    /// Dead latents (the new architectures; relu with a window, `deadWindow`).
    public let latents: LatentActivity?
    /// batchtopk's selection and running threshold.
    public let batchTopK: BatchTopKSelection<T>?
    /// Column sums' length: h and the active count; the new architectures add Σ(x − a) (d) and Σ‖x − a‖².
    let sumCount: Int
    /// AuxK's Ga = (2c/S)(ê − e) scale, and S, of the current step.
    var auxScale: T = 0
    var totalVariance = 0.0

    /// Every buffer below, in one allocation. Each view starts on a 64-byte boundary, so
    /// OpenBLAS's level-1 reductions (dot, asum) take the same path in every process and the
    /// logged terms are reproducible, not only the trajectory.
    private let scratch: Arena
    let chunks: [ChunkScratch<T>]                // (L) this rank's chunks
    let chunkRows: UnsafeMutablePointer<Int>     // (L) rows of each in this call
    let chunkSparse: UnsafeMutablePointer<Bool>  // (L) took the sparse kernels in this call
    let chunkActive: UnsafeMutablePointer<T>     // (L) Z's nonzeros in each (the column sums' last slot is summed over chunks)
    let dVt: [UnsafeMutablePointer<T>]           // (workers) × (h, d) relu's sparse path: dVᵀ; one element if never sparse
    let dVtBlocks: [UnsafeMutablePointer<T>]     // (heaps) × (sparseBlock, d) the architectures' sparse path: dVᵀ's rows by block
    let columnSums: UnsafeMutablePointer<T>      // (L, sumStride): Σ_i Z_ij (h), then the active count (then `sumCount`'s rest)
    let sumStride: Int
    let heapUnits: [UnsafeMutablePointer<Int32>] // (heaps) × max(k, k_aux): TopK's heap, one per thread that selects
    /// batchtopk: each local chunk's π, Z and column sums, for the selection (made once).
    let chunkPre: [UnsafeMutablePointer<T>], chunkZ: [UnsafeMutablePointer<T>], chunkColumnSums: [UnsafeMutablePointer<T>]
    let heapValues: [UnsafeMutablePointer<T>]
    private let entCoefficient: UnsafeMutablePointer<T>  // (h)
    private let everActive: UnsafeMutablePointer<Bool>   // (h) fired in some batch since the last count

    /// - cut: how the global batch is shared (`options.deterministic` must match its `fixedOrder`).
    /// - unitNormDecoder: keep W's rows at unit norm (a shared `store` must own whole rows of W).
    /// - architecture: topk, batchtopk or jumprelu (nil: relu, also a relu with unit-norm rows);
    ///   jumprelu's store holds θ.
    /// - deadWindow: relu: count units dead over the last this many steps (`--dead-steps`);
    ///   nil: since the last count (`takeDeadUnitCount`).
    public init(store: ParameterStore<T>, cut: BatchCut, settings: ObjectiveSettings, comm: Communicator,
                options: StepOptions = StepOptions(), unitNormDecoder: Bool = false, architecture: ArchitectureSettings? = nil,
                deadWindow: Int? = nil) {
        precondition(cut.fixedOrder == options.deterministic && cut.ranks == comm.size && cut.rank == comm.rank)
        let architecture = architecture?.activation == .relu ? nil : architecture  // relu is the sheet's step, whatever its decoder norm
        self.shape = store.layout.shape
        self.cut = cut
        self.settings = settings
        lambda = settings.lambda
        self.unitNormDecoder = unitNormDecoder
        self.options = options
        self.store = store
        let (d, h) = (shape.d, shape.h)
        let local = cut.localChunks.count, rows = cut.maxChunkRows
        schedule = ChunkSchedule(options: options, chunks: local,
                                 kernelProducts: architecture?.activation == .topk || options.precision == .bf16)
        let workers = schedule.workers
        loop = ParallelLoop(threads: max(workers, options.threads))
        kernelLoop = schedule.kernelThreads > 1 ? loop : .serial
        precondition(options.precision == .fp32 || T.self == Float.self, "bf16 products are float32's")
        bf16 = options.precision == .bf16 ? BF16Products(d: d, h: h, rows: rows, workers: workers, loop: loop) : nil
        // One heap and dVᵀ block per thread that can select or run the sparse backward at once.
        let heaps = max(workers, kernelLoop.count)
        reduction = makeGradientReduction(options: options, store: store, comm: comm, eta: T(settings.eta), clock: clock,
                                          unitNormDecoder: unitNormDecoder, loop: loop)
        // The sparse path only runs with at most `capacity` nonzeros per chunk, so that is all it needs.
        var capacity: Int = switch options.kernels {
        case .dense: 0
        case .sparse: rows * h
        case .auto: min(rows * h, Int((options.sparseBelow * Double(rows * h)).rounded(.up)))
        }
        self.architecture = architecture
        let activation = architecture?.activation ?? .relu
        kAux = architecture?.resolvedAuxK(hidden: h) ?? 0
        // TopK writes its kept entries (k per row) straight into the sparse buffers.
        if activation == .topk, let k = architecture?.k { capacity = max(capacity, rows * k) }
        latents = architecture.map { LatentActivity(h: h, deadSteps: $0.deadSteps) } ?? deadWindow.map { LatentActivity(h: h, deadSteps: $0) }
        batchTopK = activation == .batchtopk ? BatchTopKSelection(chunkCount: cut.chunkCount, localChunks: local) : nil
        sumCount = architecture == nil ? h + 1 : h + 1 + d + 1
        sumStride = (sumCount + 15) / 16 * 16
        let extras = ChunkScratch<T>.Extras(pre: architecture != nil, kAux: kAux)
        let heap = max(architecture?.k ?? 0, kAux)
        var size = Arena.Size()
        for i in 0..<local {
            ChunkScratch<T>.reserve(&size, rows: rows, shape: shape, capacity: capacity, reducedCount: store.reducedCount, ownPartial: i > 0,
                                    extras: extras)
        }
        size.add(Int.self, local); size.add(Bool.self, local); size.add(T.self, local)
        let reluSparse = architecture == nil && capacity > 0
        for _ in 0..<workers { size.add(T.self, reluSparse ? h * d : 1) }
        for _ in 0..<heaps { size.add(T.self, architecture != nil && capacity > 0 ? Objective.sparseBlock * d : 1) }
        size.add(T.self, local * sumStride)
        size.add(T.self, h); size.add(Bool.self, h)
        for _ in 0..<heaps { size.add(Int32.self, heap); size.add(T.self, heap) }
        scratch = Arena(size)
        chunks = (0..<local).map { [scratch] i in
            ChunkScratch(rows: rows, shape: store.layout.shape, capacity: capacity, arena: scratch,
                         partial: i == 0 ? store.grads : nil, reducedCount: store.reducedCount, extras: extras)
        }
        chunkRows = scratch.take(Int.self, local)
        chunkSparse = scratch.take(Bool.self, local)
        chunkActive = scratch.take(T.self, local)
        dVt = (0..<workers).map { [scratch] _ in scratch.take(T.self, reluSparse ? h * d : 1) }
        dVtBlocks = (0..<heaps).map { [scratch] _ in scratch.take(T.self, architecture != nil && capacity > 0 ? Objective.sparseBlock * d : 1) }
        columnSums = scratch.take(T.self, local * sumStride)
        entCoefficient = scratch.take(T.self, h)
        everActive = scratch.take(Bool.self, h)
        var units: [UnsafeMutablePointer<Int32>] = [], values: [UnsafeMutablePointer<T>] = []
        for _ in 0..<heaps { units.append(scratch.take(Int32.self, heap)); values.append(scratch.take(T.self, heap)) }
        heapUnits = units
        heapValues = values
        chunkPre = chunks.map(\.pre)
        chunkZ = chunks.map(\.z)
        chunkColumnSums = (0..<local).map { [columnSums, sumStride] in columnSums + $0 * sumStride }
        kernels = ChunkKernels(step: self)
    }

    /// One process, up to `maxRows` rows as one chunk (`lossAndGradient(x:mr:m:stop:)`).
    public convenience init(store: ParameterStore<T>, maxRows: Int, settings: ObjectiveSettings, comm: Communicator,
                            options: StepOptions = StepOptions(), unitNormDecoder: Bool = false, architecture: ArchitectureSettings? = nil) {
        precondition(comm.size == 1 && !options.deterministic)
        self.init(store: store, cut: .single(rows: maxRows), settings: settings, comm: comm, options: options,
                  unitNormDecoder: unitNormDecoder, architecture: architecture)
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
        defer { sparseCalls = 0; calls = 0 }
        let (compute, communication) = clock.take()
        return (Double(compute) / 1e9, Double(communication) / 1e9, calls > 0 ? Double(sparseCalls) / Double(calls) : 0)
    }

    /// The parallel region under way and its inputs (deterministic, several workers).
    enum Region { case forward, backward, add(from: UnsafeMutablePointer<T>, into: UnsafeMutablePointer<T>) }
    private var region = Region.forward
    var regionBatch: UnsafePointer<T>?
    private var regionM = 0
    private var regionSparse = false
    /// What the training thread's chunk threw in the region (the reduction's hooks).
    private var regionFailure: Error?

    /// True after a call in which some rank passed `stop: true`.
    public private(set) var stopRequested = false

    /// - x: this rank's piece of the global batch, chunk by chunk as `BatchExchange` lays it
    ///   out (`cut.slotStride` elements apart, (rows, d) each); m: the global batch size.
    /// - stop: this rank was asked to stop (a signal); the answer is in `stopRequested`.
    public func lossAndGradient(batch x: UnsafePointer<T>, stop: Bool = false) throws -> ObjectiveTerms {
        let first = cut.localChunks.lowerBound
        for i in 0..<chunks.count { chunkRows[i] = cut.chunk(first + i).count }
        return try schedule.withProductThreads { try evaluate(x, m: cut.batchSize, stop: stop) }
    }

    /// One process: `x` (mr, d) rows of a batch of m (the gradient checks' entry).
    public func lossAndGradient(x: UnsafePointer<T>, mr: Int, m: Int, stop: Bool = false) throws -> ObjectiveTerms {
        precondition(chunks.count == 1 && mr <= cut.maxChunkRows && m > 0)
        chunkRows[0] = mr
        return try schedule.withProductThreads { try evaluate(x, m: m, stop: stop) }
    }

    /// Adam with the gradient of the last call (shared memory: this rank's part, then the wait
    /// for the others').
    public func update(_ settings: AdamSettings) throws {
        try reduction.update(settings)
    }

    /// Steps 1–8, each phase one call; the reduction does the sums over the ranks.
    private func evaluate(_ x: UnsafePointer<T>, m: Int, stop: Bool) throws -> ObjectiveTerms {
        clock.start()
        try reduction.beginStep()
        packWeights()
        clock.compute(.encoderForward) { encoderForward(x, m: m) }                    // 1
        if batchTopK != nil { try selectOverTheBatch(m: m) }                           // 1b batchtopk
        try reduction.sumColumnSums(columnSums, count: sumCount)                       // 2
        let (ent, sparse) = clock.compute(.entropy) {                                  // 3
            architecture == nil ? entropy(m: m) : (0, latentStatistics(m: m))
        }
        try clock.compute(schedule.backwardSpan) { try backward(sparse: sparse) }      // 4–6, 7 over the chunks
        store.setReduced(.stopRequest, stop ? 1 : 0)
        try reduction.sumGradient()                                                    // 7 over the ranks
        let reg = reduction.regularizer()                                              // 8
        reduction.projectDecoderGradient()                                             // 8, unit-norm rows
        clock.finish()
        return terms(m: m, ent: ent, reg: reg)
    }

    /// bf16: V and W packed for this step's products (Adam moved them since the last).
    private func packWeights() {
        guard let bf16 else { return }
        clock.compute(.packWeights) {
            bf16.packWeights(V: UnsafeRawPointer(store.V).assumingMemoryBound(to: Float.self),
                             W: UnsafeRawPointer(store.W).assumingMemoryBound(to: Float.self))
        }
    }

    /// The products of chunk worker w: on its own buffers where several chunks run at once,
    /// otherwise on all of the rank's threads.
    func products(worker w: Int) -> Products<T> { Products(bf16: bf16, worker: schedule.workers > 1 ? w : nil) }

    /// Step 1 on every chunk: Z, its column sums and active count; the column sums summed
    /// over the chunks (in the tree order).
    private func encoderForward(_ x: UnsafePointer<T>, m: Int) {
        regionBatch = x
        regionM = m
        inParallel(.forward)
        // batchtopk's Z, and so its column sums, come from the selection (1b).
        if batchTopK == nil { FixedOrder.tree(columnSums, count: sumCount, stride: sumStride, chunks: chunks.count) }
    }

    /// Step 3, from the summed column sums: the entropy term and its per-unit gradient
    /// coefficient; which units fired; whether the step takes the sparse kernels.
    private func entropy(m: Int) -> (T, sparse: Bool) {
        let h = shape.h
        for j in 0..<h where columnSums[j] > 0 { everActive[j] = true }
        latents?.record(columnSums: columnSums)
        let ent = Objective.entropy(
            coefficient: entCoefficient, columnSums: columnSums, m: m, h: h,
            epsilon: T(settings.epsilon), floor: T(settings.entropyFloor))
        return (ent, useSparse(activeCount: Double(columnSums[h]), rows: m))
    }

    /// Steps 4–6 on every chunk, and their gradients and partial sums summed into the store's.
    private func backward(sparse: Bool) throws {
        regionSparse = sparse
        inParallel(.backward)
        if let failure = regionFailure { regionFailure = nil; throw failure }
        addPartials()
        calls += 1
        if (0..<chunks.count).allSatisfy({ chunkSparse[$0] }) { sparseCalls += 1 }
    }

    /// The terms from the reduced sums; notes whether some rank asked to stop.
    private func terms(m: Int, ent: T, reg: T) -> ObjectiveTerms {
        let s = store
        stopRequested = s.reduced(.stopRequest) > 0
        let sst = Double(s.reduced(.squaredNorm))
        var terms = ObjectiveTerms(
            rec: Double(s.reduced(.squaredError)) / Double(m),
            spa: Double(s.reduced(.activationSum)) / Double(m),
            ent: Double(ent), reg: Double(reg),
            l0: Double(s.reduced(.activeCount)) / Double(m),
            explainedVariance: sst > 0 ? 1 - Double(s.reduced(.squaredError)) / sst : 0)
        if kAux > 0, totalVariance > 0 { terms.auxK = Double(s.reduced(slot: ArchitectureTerm.auxSquaredError.slot)) / totalVariance }
        return terms
    }

    /// Steps 4–6 for local chunk i into its partial gradient (the data terms and partial sums).
    /// - traced: on the training thread, alone: each phase records its span, and the
    ///   reduction's hooks run between them (dW complete; progress inside the encoder's backward).
    private func chunkBackward(_ i: Int, x: UnsafePointer<T>, m: Int, sparse wanted: Bool, dVt: UnsafeMutablePointer<T>,
                               traced: Bool, products: Products<T>) throws {
        let (d, h) = (shape.d, shape.h)
        let c = chunks[i], mr = chunkRows[i], layout = store.layout
        let p = c.partial, W = store.W, a = store.a
        let dV = p + layout.V.lowerBound, dW = p + layout.W.lowerBound
        let db = p + layout.b.lowerBound, da = p + layout.a.lowerBound
        let lambda = T(self.lambda)
        let trace = traced ? clock.trace : nil
        func span(_ s: TraceSpan) -> TraceSpan? { traced ? s : nil }

        // 4: with the sparse kernels, the gather of Z's nonzeros first.
        let (sparse, sse, l1) = clock.compute(span(.decoderForward)) { () -> (Bool, T, T) in
            let sparse = wanted && c.active.gather(z: c.z, mr: mr, h: h)
            let (sse, l1) = sparse
                ? Objective.sparseDecoderForward(g: c.g, active: c.active, x: x, W: W, a: a, mr: mr, m: m, d: d)
                : Objective.decoderForward(g: c.g, z: c.z, x: x, W: W, a: a, mr: mr, m: m, d: d, h: h, products: products, trace: trace)
            return (sparse, sse, l1)
        }
        chunkSparse[i] = sparse
        // 5
        clock.compute(span(.decoderBackward)) {
            if sparse {
                Objective.sparseDecoderBackward(dW: dW, da: da, active: c.active, g: c.g, mr: mr, d: d, h: h)
            } else {
                Objective.decoderBackward(dW: dW, da: da, g: c.g, z: c.z, mr: mr, d: d, h: h, products: products, trace: trace)
            }
        }
        if traced { try reduction.decoderGradientComplete() }
        // 6
        clock.compute(span(.encoderBackward)) {
            if sparse {
                Objective.sparseEncoderBackward(
                    dV: dV, db: db, dVt: dVt, active: c.active, g: c.g, x: x, W: W,
                    entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h)
            } else {
                Objective.encoderBackward(
                    dV: dV, db: db, gz: c.gz, g: c.g, z: c.z, x: x, W: W,
                    entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h,
                    progress: { if traced { reduction.progress() } }, products: products, trace: trace)
            }
        }
        let sums = p + layout.count
        sums[ReducedTerm.squaredError.rawValue] = sse
        sums[ReducedTerm.activationSum.rawValue] = l1
        sums[ReducedTerm.activeCount.rawValue] = chunkActive[i]
        sums[ReducedTerm.squaredNorm.rawValue] = mr > 0 ? T.dot(mr * d, x, x) : 0
        sums[ReducedTerm.stopRequest.rawValue] = 0
    }

    /// Sums the local chunks' partial gradients into the first (the store's), in the tree
    /// order, each addition split over the workers (one chunk: nothing to add).
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
        if schedule.workers == 1 { work(0) } else { loop.run(self) }
    }

    /// The first of the heaps and dVᵀ blocks that chunk worker w's kernels use.
    func heapBase(worker w: Int) -> Int { kernelLoop.count > 1 ? 0 : w }

    /// Worker w's part of the current region: chunks w, w + workers, …; or its slice of an addition.
    /// The helper threads call it through `WorkerJob`, which reaches the generic code: the
    /// float32 specialization is made explicit, or every element-wise loop would go through
    /// the generic witnesses.
    @_specialize(where T == Float)
    func work(_ w: Int) {
        let (d, h) = (shape.d, shape.h)
        let s = store, stride = cut.slotStride(d: d), workers = schedule.workers
        guard let x = regionBatch, w < workers else { return }
        switch region {
        case .forward where architecture != nil:
            for i in Swift.stride(from: w, to: chunks.count, by: workers) { architectureForward(i, x: x + i * stride, worker: w) }
        case .forward:
            for i in Swift.stride(from: w, to: chunks.count, by: workers) {
                let sums = columnSums + i * sumStride
                chunkActive[i] = Objective.encoderForward(z: chunks[i].z, columnSums: sums, x: x + i * stride, V: s.V, b: s.b,
                                                          mr: chunkRows[i], d: d, h: h, products: products(worker: w),
                                                          trace: workers == 1 ? clock.trace : nil)
                sums[h] = chunkActive[i]
            }
        case .backward:
            // One chunk on this thread records its phases; chunks on worker threads, nothing.
            let traced = schedule.backwardSpan == nil
            for i in Swift.stride(from: w, to: chunks.count, by: workers) {
                do {
                    if architecture != nil {
                        try architectureBackward(i, x: x + i * stride, m: regionM, sparse: regionSparse, worker: w, traced: traced)
                    } else {
                        try chunkBackward(i, x: x + i * stride, m: regionM, sparse: regionSparse, dVt: dVt[w], traced: traced,
                                          products: products(worker: w))
                    }
                } catch {
                    regionFailure = error
                }
            }
        case .add(let from, let into):
            let n = store.reducedCount
            let lo = n * w / workers, hi = n * (w + 1) / workers
            FixedOrder.add(from + lo, into: into + lo, count: hi - lo)
        }
    }

    func useSparse(activeCount: Double, rows: Int) -> Bool {
        switch options.kernels {
        case .dense: false
        case .sparse: true
        case .auto: rows > 0 && activeCount <= options.sparseBelow * Double(rows * shape.h)
        }
    }
}
