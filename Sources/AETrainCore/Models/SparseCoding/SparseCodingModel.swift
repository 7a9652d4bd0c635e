import Foundation

/// Sparse coding (`SparseCoding`, the sheet's Exercise 1) under the run engine: one iteration
/// is one alternation of the source step and the dictionary step. Its checkpoint holds the
/// dictionary and every example's code (gathered in example order, so any number of ranks
/// can continue it).
public final class SparseCodingModel: TrainableModel {
    public let shard: DatasetShard
    public let settings: TrainSettings
    public let coding: SparseCoding
    let comm: Communicator
    let timed: TimedCommunicator
    private let options: SparseCodingSettings
    /// Σ‖x_i‖² over this rank's examples (the data are centred: SST about the mean).
    private let localSquaredNorm: Double
    private var compute: UInt64 = 0

    public var shape: ModelShape { ModelShape(d: coding.d, h: coding.h) }
    public let columns: [LogColumn] = [.rec, .spa, .reg, .loss, .l0, .ev, .comp, .comm]
    public var banner: String {
        "sparse coding, h = \(settings.hidden), λ = \(settings.objective.lambda), η = \(settings.objective.eta), "
            + "sources by \(options.sourceUpdate.rawValue)" + (options.sourceUpdate == .fista ? " (\(options.fistaSteps) steps)" : "")
    }

    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator) throws {
        try settings.validate(for: .sparseCoding)
        self.shard = shard; self.settings = settings; self.comm = comm
        options = settings.sparseCoding ?? SparseCodingSettings()
        timed = TimedCommunicator(comm)
        coding = try SparseCoding(shard: shard, hidden: settings.hidden, lambda: settings.objective.lambda,
                                  eta: settings.objective.eta, seed: settings.seed, comm: timed)
        localSquaredNorm = coding.squaredNorm(coding.x, count: coding.n * coding.d)
    }

    public func iterate(_ iteration: Int, stop: Bool) throws -> Iteration {
        let start = DispatchTime.now().uptimeNanoseconds
        let waitedBefore = timed.nanoseconds
        switch options.sourceUpdate {
        case .fista:
            // A long source step listens for stops: any rank's request abandons the alternation.
            let completed = try coding.updateSourcesFISTA(steps: options.fistaSteps) {
                var flag = [stop || StopRequest.received ? 1.0 : 0]
                try self.timed.allreduceSum(&flag)
                return flag[0] > 0
            }
            guard completed else {
                return Iteration(record: LogRecord(iteration: iteration, rec: .nan, loss: .nan), stopRequested: true, completed: false)
            }
        case .relaxed: try coding.updateSourcesRelaxed()
        }
        try coding.updateDictionary()
        // One reduction: the objective's sums, the active codes, SST and the stop flag.
        var sums = coding.localSums() + [Double(coding.localNonzeroCount()), localSquaredNorm, stop ? 1 : 0]
        try timed.allreduceSum(&sums)
        let n = Double(shard.info.examples)
        let rec = sums[0] / n, spa = sums[1] / n
        let reg = coding.squaredNorm(coding.W, count: coding.d * coding.h)
        var record = LogRecord(iteration: iteration, rec: rec, loss: rec + settings.objective.lambda * spa + settings.objective.eta * reg)
        record.spa = spa
        record.reg = reg
        record.l0 = sums[2] / n
        record.explainedVariance = sums[3] > 0 ? 1 - sums[0] / sums[3] : nil
        compute += (DispatchTime.now().uptimeNanoseconds - start) - (timed.nanoseconds - waitedBefore)
        return Iteration(record: record, stopRequested: sums[4] > 0)
    }

    public func closeWindow(_ record: inout LogRecord) {
        record.computeSeconds = Double(compute) / 1e9
        record.communicationSeconds = Double(timed.takeNanoseconds()) / 1e9
        compute = 0
    }

    public func checksum() -> UInt64 { coding.checksum() }
    public var parametersAreFinite: Bool { dictionary.allSatisfy(\.isFinite) }
    var dictionary: [Double] { coding.dictionary }

    public func checkpointState() throws -> ModelState {
        let local = coding.codes
        let codes = try DatasetShard.gatherFirstRows(shard.info.examples, width: coding.h, local: local,
                                                     examples: shard.info.examples, comm: comm)
        return ModelState(sections: [("dictionary", .f64(dictionary)), ("codes", .f64(codes))])
    }

    public func restore(_ checkpoint: Checkpoint, file: String) throws {
        let (d, h) = (coding.d, coding.h)
        let W = try checkpoint.f64("dictionary", count: d * h, path: file)
        let codes = try checkpoint.f64("codes", count: shard.info.examples * h, path: file)
        for i in 0..<(d * h) { coding.W[i] = W[i] }
        for i in 0..<(coding.n * h) { coding.S[i] = codes[shard.rows.lowerBound * h + i] }
    }

    public var codesFire: Bool { true }

    public func codes(ofRows rows: Range<Int>) -> [Float] {
        let h = coding.h, first = rows.lowerBound - shard.rows.lowerBound
        return (0..<(rows.count * h)).map { Float(coding.S[first * h + $0]) }
    }

    /// dictionary.npy (d, h): column j is atom j.
    public func outputs() throws -> ModelOutputs {
        let (d, h) = (coding.d, coding.h)
        var out = ModelOutputs()
        out.arrays = [("dictionary.npy", [d, h], dictionary.map(Float.init))]
        out.filters = (0..<min(64, h)).map { j in (0..<d).map { Float(coding.W[$0 * h + j]) } }
        return out
    }
}
