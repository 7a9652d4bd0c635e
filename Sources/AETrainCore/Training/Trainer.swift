import Foundation

/// One logged iteration, as written to metrics.jsonl.
public struct LogRecord: Codable, Equatable, Sendable {
    public var iteration: Int
    public var rec: Double, spa: Double, ent: Double, reg: Double, loss: Double
    /// Wall-clock seconds since training started.
    public var seconds: Double
}

public enum TrainOutcome: Equatable {
    case finished
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

    private var sampler: GlobalBatchSampler
    private let indices: UnsafeMutableBufferPointer<Int32>   // (m) global batch
    private let batch: UnsafeMutableBufferPointer<Float>     // (m, d) this rank's rows of it

    /// - initial: weights to start from (`--init`); otherwise V ~ N(0, 1/d), W = b = a = 0.
    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator, initial: ModelWeights? = nil) throws {
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
        step = DistributedStep(store: store, maxRows: m, settings: settings.objective, comm: comm)
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
        return try step.lossAndGradient(x: dst, mr: mr, m: settings.batchSize)
    }

    /// Applies Adam with the gradient from `evaluate` and moves to the next iteration.
    public func update() {
        store.step += 1
        Adam.step(params: store.params, moment1: store.moment1, moment2: store.moment2, grads: store.grads,
                  count: store.layout.count, t: store.step, settings: settings.adam)
        iteration += 1
        afterUpdate?(self)
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
            if iteration % settings.logEvery == 0 || iteration == settings.iterations - 1 {
                guard try comm.allAgree(on: store.checksum()) else {
                    throw UserError("ranks hold different parameters at iteration \(iteration) (checksums differ): the ranks ran different code or data")
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let record = LogRecord(iteration: iteration, rec: terms.rec, spa: terms.spa, ent: terms.ent,
                                       reg: terms.reg, loss: terms.loss(settings.objective), seconds: seconds)
                // `log` may fail on one rank only (rank 0 writes files): make that collective.
                try comm.collectively { try log(record) }
            }
            update()
        }
        return .finished
    }
}
