import Foundation

/// One logged iteration, as written to metrics.jsonl.
public struct LogRecord: Codable, Equatable, Sendable {
    public var iteration: Int
    /// The sheet's terms and the loss, from this iteration's forward pass (before its update).
    public var rec: Double, spa: Double, ent: Double, reg: Double, loss: Double
    /// Wall-clock seconds since training started.
    public var seconds: Double
    /// Mean number of active units per example in this iteration's batch.
    public var l0: Double
    /// Units active in no batch since the previous logged iteration (this one included).
    public var deadUnits: Int
    /// 1 − SSE/SST of this iteration's reconstruction.
    public var explainedVariance: Double
    /// Seconds in local compute, in communication and in the optimizer since the previous
    /// logged iteration (this rank's; rank 0 logs).
    public var computeSeconds: Double, communicationSeconds: Double, optimizerSeconds: Double
    /// Fraction of this rank's steps since the previous logged iteration that ran on the
    /// sparse kernels (absent in files from before they existed).
    public var sparseStepFraction: Double?

    public init(iteration: Int, rec: Double, spa: Double, ent: Double, reg: Double, loss: Double, seconds: Double,
                l0: Double, deadUnits: Int, explainedVariance: Double,
                computeSeconds: Double, communicationSeconds: Double, optimizerSeconds: Double,
                sparseStepFraction: Double? = nil) {
        self.sparseStepFraction = sparseStepFraction
        self.iteration = iteration; self.rec = rec; self.spa = spa; self.ent = ent; self.reg = reg; self.loss = loss
        self.seconds = seconds; self.l0 = l0; self.deadUnits = deadUnits; self.explainedVariance = explainedVariance
        self.computeSeconds = computeSeconds; self.communicationSeconds = communicationSeconds; self.optimizerSeconds = optimizerSeconds
    }

    enum CodingKeys: String, CodingKey {
        case iteration, rec, spa, ent, reg, loss, seconds, l0
        case deadUnits = "dead_units", explainedVariance = "explained_variance"
        case computeSeconds = "compute_seconds", communicationSeconds = "communication_seconds"
        case optimizerSeconds = "optimizer_seconds"
        case sparseStepFraction = "sparse_step_fraction"
    }
}

public enum TrainOutcome: Equatable {
    case finished
    /// A rank was asked to stop (SIGTERM or SIGINT); all stopped before `iteration`.
    case stopped(iteration: Int)
    /// The loss became non-finite at `iteration`; the parameters are those before it.
    case diverged(iteration: Int, term: String, value: Double)
}

/// The sheet's training loop, data-parallel: every rank samples the same global batch,
/// computes the part of it it holds, and applies the same Adam step to the same parameters.
public final class Trainer {
    public let shard: DatasetShard
    public let settings: TrainSettings
    public let comm: Communicator
    public let store: ParameterStore<Float>
    public let step: DistributedStep<Float>
    /// The next iteration to run.
    public private(set) var iteration = 0
    /// Called after every update (tests use it to inject faults).
    public var afterUpdate: ((Trainer) -> Void)?
    /// Called on every rank after every evaluation with the iteration and its terms (progress display).
    public var onStep: ((Int, ObjectiveTerms) -> Void)?
    /// Whether this rank has been asked to stop; read once per step.
    public var stopSignal: () -> Bool = { false }
    /// Write a checkpoint every this many iterations (0: only when stopping and at the end).
    public var checkpointEvery = 0
    /// Called on every rank to write a checkpoint of the state between iterations.
    public var checkpoint: ((Trainer) throws -> Void)?
    /// The batch sampler's state (for checkpoints).
    public var samplerState: GlobalBatchSampler { sampler }
    private var optimizerNanoseconds: UInt64 = 0

    private var sampler: GlobalBatchSampler
    private let indices: UnsafeMutableBufferPointer<Int32>   // (m) global batch
    private let batch: UnsafeMutableBufferPointer<Float>     // (m, d) this rank's rows of it

    /// - initial: weights to start from (`--init`); otherwise V ~ N(0, 1/d), W = b = a = 0.
    /// - options: how the step computes (kernels, overlap); it does not change the maths.
    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator, initial: ModelWeights? = nil,
                options: StepOptions = StepOptions()) throws {
        try settings.validate()
        let m = settings.batchSize
        guard m <= shard.info.examples else {
            throw UserError("--batch-size \(m) is larger than the dataset (\(shard.info.examples) examples); batches are drawn without replacement")
        }
        self.shard = shard
        self.settings = settings
        self.comm = comm
        let shape = ModelShape(d: shard.d, h: settings.hidden)
        store = ParameterStore(layout: ParameterLayout(shape))
        if let initial {
            try initial.check(against: shape)
            initial.copy(into: store)
        } else {
            // V ~ N(0, 1/d) from the seed: identical on every rank without communication.
            var rng = Xoshiro256(seed: settings.seed)
            let scale = 1 / Double(shape.d).squareRoot()
            for i in store.layout.V { store.params[i] = Float(scale * rng.normal()) }
        }
        // Every rank can hold every row of a batch (with one rank, or an unlucky draw).
        step = DistributedStep(store: store, maxRows: m, settings: settings.objective, comm: comm, options: options)
        sampler = GlobalBatchSampler(exampleCount: shard.info.examples, batchSize: m, seed: settings.seed)
        indices = .allocate(capacity: m)
        batch = .allocate(capacity: m * shape.d)
        batch.initialize(repeating: 0)
    }

    deinit { indices.deallocate(); batch.deallocate() }

    /// Draws iteration's global batch, copies this rank's rows of it, and evaluates the
    /// objective and its gradient (all ranks). Does not update the parameters.
    public func evaluate() throws -> ObjectiveTerms {
        let d = shard.d, rows = shard.rows
        guard let idx = indices.baseAddress, let dst = batch.baseAddress, let src = shard.values.baseAddress
        else { preconditionFailure("allocated in init") }
        sampler.next(into: idx)
        var mr = 0
        for k in 0..<settings.batchSize {
            let row = Int(idx[k])
            if rows.contains(row) {
                (dst + mr * d).update(from: src + (row - rows.lowerBound) * d, count: d)
                mr += 1
            }
        }
        return try step.lossAndGradient(x: dst, mr: mr, m: settings.batchSize, stop: stopSignal())
    }

    /// Continues from `checkpoint`, which must come from a run with the same trajectory
    /// settings on the same data (any number of ranks).
    public func restore(_ checkpoint: Checkpoint, file: String) throws {
        let h = checkpoint.header
        if let difference = settings.trajectoryDifference(from: h.settings) {
            throw UserError("\(file) was written by a run with other settings (\(difference)); resume with the same settings")
        }
        guard h.datasetFingerprint == shard.info.fingerprint, h.examples == shard.info.examples else {
            throw UserError("\(file) was written for other data (fingerprint \(h.datasetFingerprint), \(h.examples) examples; "
                            + "this data: \(shard.info.fingerprint), \(shard.info.examples) examples)")
        }
        guard h.shape == store.layout.shape else { throw UserError("\(file): model shape \(h.shape) does not match \(store.layout.shape)") }
        guard h.iteration <= settings.iterations else {
            throw UserError("\(file) is at iteration \(h.iteration), past --iterations \(settings.iterations)")
        }
        let rng = h.samplerRNG.compactMap { UInt64($0, radix: 16) }
        guard rng.count == 4 else { throw UserError("\(file): damaged checkpoint (sampler state)") }
        try sampler.restore(permutation: checkpoint.permutation, rngState: rng)
        for i in 0..<store.layout.count {
            store.params[i] = checkpoint.parameters[i]
            store.moment1[i] = checkpoint.moment1[i]
            store.moment2[i] = checkpoint.moment2[i]
        }
        store.step = h.iteration
        iteration = h.iteration
    }

    /// Applies Adam with the gradient from `evaluate` and moves to the next iteration.
    public func update() {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { optimizerNanoseconds += DispatchTime.now().uptimeNanoseconds - start }
        store.step += 1
        Adam.step(params: store.params, moment1: store.moment1, moment2: store.moment2, grads: store.grads,
                  count: store.layout.count, t: store.step, settings: settings.adam)
        iteration += 1
        afterUpdate?(self)
    }

    /// The activations Z (k, h) of the dataset's first k examples under the current
    /// parameters, gathered on rank 0 (nil elsewhere). These rows may lie on several ranks.
    public func firstActivations(_ k: Int) throws -> [Float]? {
        let h = settings.hidden, d = shard.d
        let k = min(k, shard.info.examples)
        let mine = shard.rows.clamped(to: 0..<k)
        var z = [Float](repeating: 0, count: mine.count * h)
        var sums = [Float](repeating: 0, count: h)
        if !mine.isEmpty, let src = shard.values.baseAddress {
            z.withUnsafeMutableBufferPointer { zb in
                sums.withUnsafeMutableBufferPointer { sb in
                    guard let zp = zb.baseAddress, let sp = sb.baseAddress else { return }
                    Objective.encoderForward(z: zp, columnSums: sp, x: src + (mine.lowerBound - shard.rows.lowerBound) * d,
                                             V: store.V, b: store.b, mr: mine.count, d: d, h: h)
                }
            }
        }
        let all = try DatasetShard.gatherFirstRows(k, width: h, local: z, examples: shard.info.examples, comm: comm)
        return comm.isRoot ? all : nil
    }

    /// Runs the remaining iterations. `log` is called on every rank at iterations that are
    /// multiples of `logEvery` and at the last one, with the terms of that iteration's
    /// forward pass (before its update), as the sheet prints them.
    public func run(log: (LogRecord) throws -> Void) throws -> TrainOutcome {
        let start = DispatchTime.now().uptimeNanoseconds
        while iteration < settings.iterations {
            let terms = try evaluate()
            if let bad = terms.firstNonFinite {
                return .diverged(iteration: iteration, term: bad.name, value: bad.value)
            }
            onStep?(iteration, terms)
            if iteration % settings.logEvery == 0 || iteration == settings.iterations - 1 {
                guard try comm.allAgree(on: store.checksum()) else {
                    throw UserError("ranks hold different parameters at iteration \(iteration) (checksums differ): the ranks ran different code or data")
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let (compute, communication, sparseFraction) = step.takeTimings()
                let record = LogRecord(
                    iteration: iteration, rec: terms.rec, spa: terms.spa, ent: terms.ent,
                    reg: terms.reg, loss: terms.loss(settings.objective), seconds: seconds,
                    l0: terms.l0, deadUnits: step.takeDeadUnitCount(), explainedVariance: terms.explainedVariance,
                    computeSeconds: compute, communicationSeconds: communication,
                    optimizerSeconds: Double(optimizerNanoseconds) / 1e9, sparseStepFraction: sparseFraction)
                optimizerNanoseconds = 0
                // `log` may fail on one rank only (rank 0 writes files): make that collective.
                try comm.collectively { try log(record) }
            }
            update()
            if step.stopRequested {
                try checkpoint?(self)
                return .stopped(iteration: iteration)
            }
            if checkpointEvery > 0, iteration % checkpointEvery == 0, iteration < settings.iterations {
                try checkpoint?(self)
            }
        }
        try checkpoint?(self)
        return .finished
    }
}
