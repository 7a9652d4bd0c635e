import Foundation

/// The sheet's Exercise 3, data-parallel: every rank samples the same global batch, receives
/// the rows of its equal piece of it (`BatchCut`, `BatchExchange`), computes that piece
/// (`DistributedStep`), and applies the same Adam step to the same parameters (or, when the
/// ranks share one copy of them, each its part of the step).
public final class SparseAutoencoder: AdamTrainedModel {
    public let shard: DatasetShard
    private let comm: Communicator
    public let settings: TrainSettings
    public let store: ParameterStore<Float>
    /// The data-parallel evaluation of the objective and its gradient.
    public let gradient: DistributedStep<Float>
    public var shape: ModelShape { store.layout.shape }
    /// The sheet's and aetrain's columns (relu: ent only where ε > 0; topk and batchtopk: AuxK);
    /// the fraction of the squared norm explained where the data are not centred; lr and λ
    /// where a schedule changes them.
    public var columns: [LogColumn] {
        let schedule = settings.schedules
        let model: [LogColumn] = switch settings.activation {
        case .relu: [.rec, .spa] + (settings.objective.epsilon > 0 ? [.ent] : []) + [.reg, .l0, .dead, .ev]
        case .topk, .batchtopk: [.rec, .auxk, .reg, .loss, .l0, .dead, .neverFired, .ev]
        case .jumprelu: [.rec, .reg, .loss, .l0, .dead, .neverFired, .ev]
        }
        return model + (settings.normalization.isCentred ? [] : [.esn])
            + (schedule.schedulesLearningRate ? [.lr] : []) + (schedule.schedulesLambda ? [.lambda] : []) + [.comp, .comm, .opt]
    }
    public var banner: String {
        let o = settings.objective
        let rows = settings.unitNormDecoder ? ", unit-norm decoder rows" : ""
        guard let a = settings.modernArchitecture else { return "h = \(settings.hidden), λ = \(o.lambda), ε = \(o.epsilon), η = \(o.eta)" + rows }
        switch a.activation {
        case .topk, .batchtopk:
            return "\(a.activation.rawValue), h = \(settings.hidden), k = \(a.k), k_aux = \(a.resolvedAuxK(hidden: settings.hidden)), "
                + "c = \(a.auxCoef), dead after \(a.deadSteps) steps, η = \(o.eta)" + rows
        case .jumprelu, .relu:
            return "\(a.activation.rawValue), h = \(settings.hidden), θ from \(a.thresholdInit), bandwidth \(a.bandwidth), λ = \(o.lambda), η = \(o.eta)" + rows
        }
    }
    /// On vectors, relu with λ = 0 learns a dense code: said once, with how to get a sparse one.
    public var notes: [String] {
        guard shard.info.imageShape == nil, settings.activation == .relu, settings.objective.lambda == 0 else { return [] }
        return ["note: with λ = 0 this trains a dense autoencoder (nothing makes its codes sparse); for a sparse one give --lambda (e.g. --lambda 1) or --activation topk"]
    }

    public var sampler: GlobalBatchSampler
    /// Brings this rank the rows of its piece of each batch.
    public let exchange: BatchExchange
    private let scratch: Arena
    private let indices: UnsafeMutablePointer<Int32>   // (m) global batch
    private let batch: UnsafeMutablePointer<Float>     // this rank's piece of it, chunk by chunk (BatchCut.slotStride apart)
    // Held-out evaluation, up to m examples at a time:
    private let evalZ: UnsafeMutablePointer<Float>       // (m, h)
    private let evalResidual: UnsafeMutablePointer<Float> // (m, d)
    let evalColumnSums: UnsafeMutablePointer<Float> // (h)
    /// The batch's sums of squares for explained variance, at log lines.
    private let squares: BatchSquares
    // The new architectures' inference (one element each for relu):
    let evalPre: UnsafeMutablePointer<Float>          // (m, h) π
    let evalHeapUnits: UnsafeMutablePointer<Int32>    // (k) TopK's heap
    let evalHeapValues: UnsafeMutablePointer<Float>   // (k)
    private var optimizerNanoseconds: UInt64 = 0
    /// This iteration's Adam settings (the learning rate of the schedule).
    private var adam: AdamSettings

    /// - initial: weights to start from (`--init`); otherwise V ~ N(0, 1/d), W = b = a = 0.
    ///   With unit-norm decoder rows, W's rows start at unit norm: a fresh W's row j is V's
    ///   column j, normalized; `--init`'s rows are normalized (a zero row taken from V too).
    /// - options: how the step computes (kernels, overlap); it does not change the maths.
    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator, initial: ModelWeights? = nil,
                options: StepOptions = StepOptions()) throws {
        let m = settings.batchSize
        let cut = BatchCut(batchSize: m, ranks: comm.size, rank: comm.rank, fixedOrder: options.deterministic)
        // The checks, agreed on by every rank before the shared store's collectives: the memory
        // estimate includes this rank's shard, whose size differs by a row between ranks.
        let shape = try comm.collectively { try Self.check(shard: shard, settings: settings, initial: initial, cut: cut, comm: comm) }
        self.shard = shard
        self.comm = comm
        self.settings = settings
        // Ranks on one node share θ, the moments and their gradients (`ParameterStore.shared`).
        let layout = ParameterLayout(shape, threshold: settings.activation == .jumprelu)
        let slots = ArchitectureTerm.reducedSlots(for: settings.modernArchitecture)
        // With unit-norm rows, each rank of a shared store owns whole rows of W.
        let rows = settings.unitNormDecoder ? (range: layout.W, length: shape.d) : nil
        store = options.sharedMemory ? try ParameterStore.shared(layout: layout, reducedSlots: slots, rowsOf: rows, comm: comm)
                                     : ParameterStore(layout: layout, reducedSlots: slots)
        if let initial {
            initial.copy(into: store)
        } else {
            // V ~ N(0, 1/d) from the seed: identical on every rank without communication.
            var rng = Xoshiro256(seed: settings.seed)
            let scale = 1 / Double(shape.d).squareRoot()
            for i in store.layout.V { store.params[i] = Float(scale * rng.normal()) }
        }
        // jumprelu's θ from ⟨threshold-init⟩ (also under --init, whose files hold no θ).
        if let a = settings.modernArchitecture, a.activation == .jumprelu {
            let theta = store.parameter("threshold")
            for j in 0..<shape.h { theta[j] = Float(a.thresholdInit) }
        }
        if settings.unitNormDecoder { Self.startUnitRows(store, initial: initial) }
        var options = options
        options.precision = settings.productPrecision
        gradient = DistributedStep(store: store, cut: cut, settings: settings.objective, comm: comm, options: options,
                                   unitNormDecoder: settings.unitNormDecoder, architecture: settings.modernArchitecture,
                                   deadWindow: settings.modernArchitecture == nil ? settings.architecture?.reluDeadSteps : nil)
        squares = BatchSquares(cut: cut, d: shape.d)
        adam = settings.adam
        sampler = GlobalBatchSampler(exampleCount: shard.trainingCount, batchSize: m, seed: settings.seed)
        exchange = BatchExchange(cut: cut, shard: shard, comm: comm)
        var size = Arena.Size()
        size.add(Int32.self, m)
        size.add(Float.self, max(m * shape.d, exchange.batchElements))
        size.add(Float.self, m * shape.h); size.add(Float.self, m * shape.d); size.add(Float.self, shape.h)
        let inferring = settings.modernArchitecture != nil, heap = settings.modernArchitecture?.k ?? 1
        size.add(Float.self, inferring ? m * shape.h : 1); size.add(Int32.self, heap); size.add(Float.self, heap)
        scratch = Arena(size)
        indices = scratch.take(Int32.self, m)
        batch = scratch.take(Float.self, max(m * shape.d, exchange.batchElements))
        evalZ = scratch.take(Float.self, m * shape.h)
        evalResidual = scratch.take(Float.self, m * shape.d)
        evalColumnSums = scratch.take(Float.self, shape.h)
        evalPre = scratch.take(Float.self, inferring ? m * shape.h : 1)
        evalHeapUnits = scratch.take(Int32.self, heap)
        evalHeapValues = scratch.take(Float.self, heap)
    }

    /// Unit rows of W: a fresh start's from V's columns; given weights' normalized, a zero row
    /// taken from V's column. Every rank of a shared store runs this at once, so W is only
    /// written, from sources nobody changes (V, which every rank set to the same values, or the
    /// given arrays): no rank reads a row another may be rewriting.
    private static func startUnitRows(_ store: ParameterStore<Float>, initial: ModelWeights?) {
        let (d, h) = (store.layout.shape.d, store.layout.shape.h)
        let W = store.W, V = UnsafePointer(store.V)
        for j in 0..<h {
            let given = initial?.W.withUnsafeBufferPointer { w in
                w.baseAddress.map { UnitNormDecoder.writeUnit(W + j * d, from: $0 + j * d, stride: 1, count: d) } ?? false
            } ?? false
            if !given { UnitNormDecoder.writeUnit(W + j * d, from: V + j, stride: h, count: d) }
        }
    }

    /// What the model needs, checked before anything is allocated: the settings, the batch
    /// against the data, this rank's memory, the sizes. Returns the model's shape.
    private static func check(shard: DatasetShard, settings: TrainSettings, initial: ModelWeights?, cut: BatchCut,
                              comm: Communicator) throws -> ModelShape {
        try settings.validate()
        try settings.productPrecision.checkSupported()
        let m = settings.batchSize
        guard m <= shard.trainingCount else {
            throw UserError("⟨batch-size⟩ \(m) is larger than \(shard.trainingDescription); batches are drawn without replacement")
        }
        let shape = try ModelShape(checkingD: shard.d, h: settings.hidden)
        let (d, h) = (shape.d, shape.h)
        var need = MemoryEstimate()
        need.add(bytes: shard.bytes)
        need.add(Float.self, 4, 2 * d + 1, h); need.add(Float.self, 4, d)  // θ, gradient, Adam's moments
        need.add(Float.self, 3, m, h); need.add(Float.self, m, d); need.add(Float.self, h, d)  // the step's scratch
        if settings.modernArchitecture != nil { need.add(Float.self, 2, m, h); need.add(Float.self, m, d) }  // π, held-out π, AuxK
        need.add(Float.self, m, d); need.add(Int32.self, shard.info.examples)                  // the batch; the sampler
        need.add(Float.self, m, d)                                                             // the exchange's rows
        need.add(Float.self, cut.localChunks.count - 1, 2 * d + 1, h)                          // the chunks' partial gradients
        if settings.productPrecision == .bf16 { need.add(UInt16.self, 3, d, h); need.add(UInt16.self, m, max(d, h)) }  // packed V, W, Wᵀ; an activation
        try MemoryBudget.check(need, for: "a sparse autoencoder with h = \(h) on d = \(d) pixels and batch \(m) (parameters ×4, scratch and this rank's data)", comm: comm)
        try shape.checkCounts()
        _ = try Sizes.count([m, max(d, h)], naming: "⟨batch-size⟩ \(m) with h = \(h) and d = \(d)")
        // The batch's rows travel in one MPI_Alltoallv, whose byte counts and offsets are 32-bit.
        guard m * d <= Int(Int32.max) / MemoryLayout<Float>.stride else {
            throw UserError("⟨batch-size⟩ \(m) with d = \(d): the batch's rows are \(m * d * MemoryLayout<Float>.stride) bytes, beyond the 2 GiB one exchange between ranks carries; use a smaller batch")
        }
        _ = try Sizes.count([shard.info.examples], naming: "\(shard.info.source): the number of examples")
        try initial?.check(against: shape)
        return shape
    }

    /// Draws `iteration`'s global batch, brings this rank the rows of its piece, and evaluates
    /// the objective and its gradient (all ranks). Does not update the parameters.
    public func evaluate(stop: Bool = false) throws -> ObjectiveTerms {
        gradient.trace?.begin(.batch)
        sampler.next(into: indices)
        try exchange.fill(indices: indices, into: batch)
        gradient.trace?.end()
        return try gradient.lossAndGradient(batch: batch, stop: stop)
    }

    /// Applies Adam with the gradient from `evaluate` (shared memory: this rank's part, then
    /// the wait for the others').
    public func update() throws {
        let start = DispatchTime.now().uptimeNanoseconds
        try gradient.update(adam)
        optimizerNanoseconds += DispatchTime.now().uptimeNanoseconds - start
    }

    // MARK: TrainableModel

    public func record(into trace: TraceRecorder) { gradient.trace = trace }

    /// The step at `iteration`: λ and the learning rate from their schedules (the settings'
    /// own values, untouched, without one), the batch's sums of squares at log lines.
    public func iterate(_ iteration: Int, stop: Bool) throws -> Iteration {
        var objective = settings.objective
        if let schedule = settings.schedule {
            objective.lambda = settings.objective.lambda * schedule.lambdaFactor(at: iteration)
            adam.learningRate = settings.adam.learningRate * schedule.learningRateFactor(at: iteration, of: settings.iterations)
            gradient.lambda = objective.lambda
        }
        let t = try evaluate(stop: stop)
        var record = LogRecord(iteration: iteration, rec: t.rec, loss: t.loss(objective, architecture: settings.modernArchitecture))
        if settings.modernArchitecture == nil {
            record.spa = t.spa; record.ent = t.ent
        } else if gradient.kAux > 0 {
            record.auxK = t.auxK
        }
        record.reg = t.reg
        record.l0 = t.l0
        if settings.logs(iteration) {
            let (centred, squaredNorm) = try squares.measure(batch: batch, comm: comm)
            let sse = t.rec * Double(settings.batchSize)
            record.explainedVariance = centred > 0 ? 1 - sse / centred : nil
            if !settings.normalization.isCentred, squaredNorm > 0 { record.explainedSquaredNorm = 1 - sse / squaredNorm }
        }
        if let schedule = settings.schedule {
            if schedule.schedulesLearningRate { record.learningRate = adam.learningRate }
            if schedule.schedulesLambda { record.lambda = objective.lambda }
        }
        if record.firstNonFinite == nil { try update() }
        return Iteration(record: record, stopRequested: gradient.stopRequested)
    }

    public func closeWindow(_ record: inout LogRecord) {
        let (compute, communication, sparseFraction) = gradient.takeTimings()
        record.deadUnits = gradient.takeDeadUnitCount()
        if let latents = gradient.latents {
            record.deadUnits = latents.deadNow
            record.neverFiredUnits = latents.neverFired
        }
        record.computeSeconds = compute
        record.communicationSeconds = communication
        record.optimizerSeconds = Double(optimizerNanoseconds) / 1e9
        record.sparseStepFraction = sparseFraction
        optimizerNanoseconds = 0
    }

    /// Z = relu(X V + b) of this rank's examples `rows` (a few: the activations file). One
    /// row per product, on one thread: a row's bits then depend neither on which rank holds
    /// it nor on how many rows and threads share the product (OpenBLAS's do).
    public func codes(ofRows rows: Range<Int>) -> [Float] {
        let h = settings.hidden, d = shard.d
        var z = [Float](repeating: 0, count: rows.count * h)
        var sums = [Float](repeating: 0, count: h)
        let threads = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(threads) }
        z.withUnsafeMutableBufferPointer { z in
            guard let base = z.baseAddress else { return }  // no rows
            for (i, row) in rows.enumerated() {
                _ = shard.withRows(row..<(row + 1)) { x in
                    if settings.modernArchitecture != nil {
                        inferCodes(z: base + i * h, x: x, rows: 1)
                    } else {
                        Objective.encoderForward(z: base + i * h, columnSums: &sums, x: x, V: store.V, b: store.b, mr: 1, d: d, h: h)
                    }
                }
            }
        }
        return z
    }

    public var evaluatesHeldOut: Bool { true }
    public var codesFire: Bool { true }
    public var sharesParameterMemory: Bool { store.sharing != nil }

    /// rec, L0, the units that fire and SST over `rows`, in chunks of the batch size (the
    /// batch buffer is free between iterations).
    public func heldOutSums(of data: DatasetShard, rows: [Int]) -> HeldOutSums {
        let d = shape.d, h = shape.h, m = settings.batchSize
        var sums = HeldOutSums(units: h, d: d)
        var start = 0
        while start < rows.count {
            let mr = min(m, rows.count - start)
            for i in 0..<mr { data.copyRow(rows[start + i], to: batch + i * d) }
            let active = settings.modernArchitecture != nil ? inferCodes(z: evalZ, x: batch, rows: mr)
                : Objective.encoderForward(z: evalZ, columnSums: evalColumnSums, x: batch, V: store.V, b: store.b, mr: mr, d: d, h: h)
            let (sse, _) = Objective.decoderForward(g: evalResidual, z: evalZ, x: batch, W: store.W, a: store.a, mr: mr, m: mr, d: d, h: h)
            sums.squaredError += Double(sse)
            sums.addSquares(rows: batch, count: mr)
            sums.active += Double(active)
            sums.examples += Double(mr)
            for i in 0..<mr {
                for j in 0..<h where evalZ[i * h + j] != 0 { sums.fired[j] += 1 }
            }
            start += mr
        }
        return sums
    }

    public func outputs() throws -> ModelOutputs {
        let weights = ModelWeights(store)
        var out = ModelOutputs()
        out.arrays = weights.arrays
        guard let a = settings.modernArchitecture else {
            out.files = [("model.safetensors", weights.safetensors(metadata: ["format": "aetrain", "layout": "z = relu(x V + b), x_hat = z W + a"]))]
            out.filters = currentFilters()
            return out
        }
        var metadata = ["format": "aetrain", "activation": a.activation.rawValue, "layout": a.activation.inferenceRule]
        if a.activation == .topk || a.activation == .batchtopk { metadata["k"] = "\(a.k)" }
        var extra: [(name: String, shape: [Int], values: [Float])] = []
        if let threshold = thresholds() {
            out.arrays.append(("threshold.npy", [shape.h], threshold))
            extra.append(("threshold", [shape.h], threshold))
        }
        out.files = [("model.safetensors", weights.safetensors(metadata: metadata, extra: extra))]
        out.filters = currentFilters()
        return out
    }

    /// The first 64 rows of W (h, d), as `outputs` shows them.
    public func currentFilters() -> [[Float]] {
        let d = shape.d, W = store.tensor(store.layout.W)
        return (0..<min(64, shape.h)).map { Array(W[($0 * d)..<(($0 + 1) * d)]) }
    }
}
