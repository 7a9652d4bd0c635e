import Foundation

/// One session of a run, once it is set up (`TrainingRun.open`): the loop, checkpoints, stops
/// and the end. Everything that could fail on one rank alone runs under
/// `Communicator.collectively`, so no rank is left waiting.
final class RunSession {
    let plan: RunPlan
    let comm: Communicator
    let kind: ModelKind
    let model: TrainableModel
    let shard: DatasetShard
    let settings: TrainSettings
    let directory: URL
    let runID: String
    /// The iteration this session starts at (past 0 when resumed).
    let first: Int
    /// Rank 0's observers (none elsewhere).
    let observers: [RunObserver]
    let checkpointFolder: CheckpointFolder
    /// Held-out examples are evaluated at each log line: this rank's (global indices of
    /// `evalData`, the training shard or `--eval-data`'s).
    let evaluating: Bool
    private let evalData: DatasetShard
    private let heldOutRows: [Int]
    /// The newest checkpoint written, or resumed from.
    private(set) var lastCheckpoint: URL?
    /// Rank 0's hold on the run directory, for the session's life.
    private let claim: RunDirectoryClaim?
    /// The timeline (`--trace`), nil without it.
    var trace: TraceRecorder?

    /// The examples whose codes the sheet's sparsity plot shows.
    static let codeExamples = 25

    init(plan: RunPlan, comm: Communicator, prepared p: TrainingRun.Prepared, directory: URL, claim: RunDirectoryClaim?,
         runID: String, first: Int, observers: [RunObserver]) {
        self.plan = plan; self.comm = comm; kind = p.definition.kind; model = p.model; shard = p.shard; settings = p.settings
        self.directory = directory; self.claim = claim; self.runID = runID; self.first = first; self.observers = observers
        checkpointFolder = CheckpointFolder(run: directory)
        evaluating = (p.shard.split != nil || p.evalShard != nil) && p.model.evaluatesHeldOut
        evalData = p.evalShard ?? p.shard
        heldOutRows = !evaluating ? [] : p.evalShard.map { Array($0.rows) } ?? p.shard.heldOutRows
        lastCheckpoint = p.resumed.map { URL(fileURLWithPath: $0.file) }
    }

    /// Iterations `first ..< settings.iterations`, until the end, a stop request or a
    /// non-finite loss: log lines (with the ranks' checksum and the held-out terms),
    /// periodic checkpoints and the checkpoint of a stop.
    func loop() throws -> RunOutcome {
        var iteration = first, previousLog = first - 1
        let start = DispatchTime.now().uptimeNanoseconds
        let sinceStart = ProcessStatistics.secondsSinceStart()
        var toFirstStep: Double? = sinceStart.isFinite ? sinceStart : nil  // logged once
        while iteration < settings.iterations {
            trace?.beginStep(iteration)
            let step = try model.iterate(iteration, stop: StopRequest.received)
            trace?.endStep()
            guard step.completed else {  // abandoned on a stop request: its state is still the one before it
                try checkpoint(iteration)
                return .stopped(iteration: iteration)
            }
            var record = step.record
            if let bad = record.firstNonFinite { return .diverged(iteration: iteration, term: bad.name, value: bad.value) }
            if comm.isRoot { for o in observers { o.iterated(iteration, loss: record.loss) } }
            if settings.logs(iteration) {
                trace?.begin(.logLine)
                defer { trace?.end() }
                guard try comm.allAgree(on: model.checksum()) else {
                    throw UserError("ranks hold different parameters at iteration \(iteration) (checksums differ): the ranks ran different code or data")
                }
                record.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                record.secondsToFirstStep = toFirstStep
                toFirstStep = nil
                model.closeWindow(&record)
                if evaluating { try evaluateHeldOut(into: &record) }
                let steps = iteration - previousLog
                try onRoot { try $0.logged(record, steps: steps) }
                previousLog = iteration
            }
            iteration += 1
            applyTestHooks(after: iteration)
            if step.stopRequested {
                try checkpoint(iteration)
                return .stopped(iteration: iteration)
            }
            if plan.checkpoints.every > 0, iteration % plan.checkpoints.every == 0, iteration < settings.iterations {
                try checkpoint(iteration)
            }
        }
        try checkpoint(iteration)
        return .finished
    }

    /// The model's state before `iteration`, gathered and written by rank 0.
    func checkpoint(_ iteration: Int) throws {
        guard model.checkpoints else { return }
        trace?.begin(.checkpoint)
        defer { trace?.end() }
        let state = try model.checkpointState()
        var header = Checkpoint.Header(
            model: kind, runID: runID, iteration: iteration, settings: settings, datasetFingerprint: shard.info.fingerprint,
            examples: shard.info.examples, shape: model.shape, samplerRNG: state.samplerRNG?.map { String($0, radix: 16) },
            ranks: comm.size, written: ISO8601DateFormatter().string(from: Date()))
        header.normalization = shard.normalization.record
        let sections = state.sections + [(Checkpoint.normalizationMean, .f64(shard.normalization.mean))]
        try comm.collectively {
            guard comm.isRoot else { return }
            let file = try checkpointFolder.write(Checkpoint(header: header, values: sections), keep: plan.checkpoints.keep)
            lastCheckpoint = file
            for o in observers { o.checkpointed(file) }
        }
    }

    /// The outputs (only finite parameters are written; the rest describes them), and the
    /// error of a diverged run.
    func finish(_ outcome: RunOutcome) throws {
        let finite = model.parametersAreFinite
        let outputs = finite ? try model.outputs() : nil
        let activations = finite ? try firstCodes() : nil
        let density = finite && model.codesFire
            ? try FeatureDensity.measure(model, shard: shard, hidden: settings.hidden, comm: comm) : nil
        try writeTestChecksums()
        let result = RunResult(outcome: outcome, directory: directory, outputs: outputs, activations: activations,
                               hidden: settings.hidden, featureDensity: density, dataset: shard.info, mean: shard.pixelMean, lastCheckpoint: lastCheckpoint)
        try onRoot { try $0.finished(result) }
        if case let .diverged(at, term, value) = outcome {
            let kept = finite ? "the weights from before iteration \(at) are in \(directory.relativePath)"
                              : "no weights were written (they were no longer finite)"
            let last = lastCheckpoint.map { "; the last good checkpoint is \($0.path)" } ?? ""
            throw UserError("the loss became non-finite at iteration \(at) (\(term) = \(value)); \(kept)\(last). Try a smaller ⟨learning-rate⟩.")
        }
    }

    /// Calls `body` on each observer on rank 0; a failure there stops every rank.
    func onRoot(_ body: (RunObserver) throws -> Void) throws {
        try comm.collectively {
            guard comm.isRoot else { return }
            for o in observers { try body(o) }
        }
    }

    /// The held-out terms of a log line: every held-out example, each rank its own, reduced.
    private func evaluateHeldOut(into record: inout LogRecord) throws {
        let sums = model.heldOutSums(of: evalData, rows: heldOutRows)
        var values = [sums.squaredError, sums.squaredNorm, sums.active, sums.examples] + sums.fired + sums.columnSums
        try comm.allreduceSum(&values)
        let n = max(values[3], 1), units = sums.fired.count
        record.evalRec = values[0] / n
        // About the held-out examples' own mean (`BatchSquares`); about 0 for a model without column sums.
        let centred = values.withUnsafeBufferPointer { v in
            sums.columnSums.isEmpty ? values[1]
                : BatchSquares.centred(squaredNorm: v[1], columnSums: v.baseAddress! + 4 + units, count: values[3], d: sums.columnSums.count)
        }
        record.evalExplainedVariance = centred > 0 ? 1 - values[0] / centred : nil
        if !sums.columnSums.isEmpty, !evalData.normalization.kind.isCentred, values[1] > 0 {
            record.evalExplainedSquaredNorm = 1 - values[0] / values[1]
        }
        if !sums.fired.isEmpty {
            record.evalL0 = values[2] / n
            record.evalDeadUnits = values[4..<(4 + units)].filter { $0 == 0 }.count
        }
    }

    /// The codes (k, h) of the dataset's first k examples, gathered on rank 0 (nil elsewhere).
    private func firstCodes() throws -> [Float]? {
        let k = min(Self.codeExamples, shard.info.examples)
        let mine = shard.rows.clamped(to: 0..<k)
        let local = mine.isEmpty ? [] : model.codes(ofRows: mine)
        let all = try DatasetShard.gatherFirstRows(k, width: settings.hidden, local: local, examples: shard.info.examples, comm: comm)
        return comm.isRoot ? all : nil
    }
}
