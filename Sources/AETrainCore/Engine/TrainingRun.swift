import Foundation

/// Carries out a `RunPlan` for any model: loads the data, builds or restores the model, runs
/// the loop and hands what happens to the observers. Written once for every model:
///
///  - stops: a signal on any rank stops every rank at the next iteration boundary, with a
///    checkpoint; a non-finite loss stops the run and keeps the last good checkpoint;
///  - checkpoints every `plan.checkpoints.every` iterations, at the end and when stopped,
///    and exact resume from the newest valid one;
///  - the ranks' agreement (a parameter checksum at every log line);
///  - the log line, the table, metrics.jsonl, the progress line, the images and the model's
///    files (observers, on rank 0), and the gather of the first examples' codes;
///  - the collective error protocol: every step that can fail on one rank only is run under
///    `Communicator.collectively`, so no rank is left waiting.
public final class TrainingRun {
    public let plan: RunPlan
    let comm: Communicator

    public init(plan: RunPlan, comm: Communicator) {
        self.plan = plan
        self.comm = comm
    }

    /// The examples whose codes the sheet's sparsity plot shows.
    public static let codeExamples = 25

    @discardableResult
    public func run() throws -> RunOutcome {
        try plan.validate()
        StopRequest.install()
        let threads = plan.execution.threadsPerRank ?? Cores.perRank(comm)
        BLASThreads.set(threads)
        Denormals.flushToZero()

        // A resumed run starts from its checkpoint: model, settings and data as recorded.
        let resumed = try plan.start.resumeDirectory.map { try ResumePoint.load(directory: $0, comm: comm) }
        let kind = try resolveModel(resumed)
        let (shard, recordedData) = try loadData(resumed)
        let initial = try plan.start.weightsDirectory.map { dir in
            try comm.collectively { try ModelWeights.load(from: URL(fileURLWithPath: dir)) }
        }
        let settings = try TrainSettings.merged(plan.overrides, over: resumed?.checkpoint.header.settings, model: kind,
                                                defaultHidden: initial?.shape.h)
        if let fraction = settings.evalFraction {
            let split = HeldOutSplit(examples: shard.info.examples, fraction: fraction, seed: settings.seed)
            guard !split.heldOut.isEmpty else {
                throw UserError("⟨eval-fraction⟩ \(fraction) of \(shard.info.examples) examples holds out none; give a larger fraction")
            }
            shard.split = split
        }
        let model = try comm.collectively { () throws -> TrainableModel in
            guard settings.batchSize >= comm.size || kind == .sparseCoding || kind == .pca else {
                throw UserError("⟨batch-size⟩ \(settings.batchSize) is smaller than the number of ranks (\(comm.size))")
            }
            let model = try makeModel(kind, shard: shard, settings: settings, initial: initial)
            if let resumed { try resumed.check(against: settings, shard: shard, model: model, kind: kind) }
            return model
        }
        if let resumed { try comm.collectively { try model.restore(resumed.checkpoint, file: resumed.file) } }
        let first = resumed?.checkpoint.header.iteration ?? 0
        let evaluating = shard.split != nil && model.evaluatesHeldOut

        // Only rank 0 touches the output directory; its errors stop every rank. It claims the
        // directory first: never another run's, never over an input.
        let directory = URL(fileURLWithPath: plan.output.directory ?? plan.start.resumeDirectory ?? plan.output.defaultDirectory)
        let claim = try comm.collectively { () throws -> RunDirectoryClaim? in
            guard comm.isRoot else { return nil }
            try InputOutputPaths.check(output: directory, setting: "out", inputs: inputs(recordedData))
            return try RunDirectoryClaim(directory, resuming: resumed != nil, overwrite: plan.output.overwrite)
        }
        defer { withExtendedLifetime(claim) {} }
        let runID = resumed?.checkpoint.header.runID ?? resumed?.config?.runID ?? UUID().uuidString
        let observers = standardObservers(kind) + plan.observers
        let config = RunConfig(
            model: kind, runID: runID, settings: settings, dataset: shard.info, ranks: comm.size, blasThreadsPerRank: threads,
            started: ISO8601DateFormatter().string(from: Date()), commandLine: plan.output.commandLine,
            data: recordedData,
            resumedFrom: resumed?.file, checkpoints: model.checkpoints ? plan.checkpoints : nil,
            execution: RunConfig.Execution(plan.execution, kind: kind, comm: comm), heldOutRows: shard.split?.heldOut)
        let info = RunInfo(
            model: kind, settings: settings, dataset: shard.info, preview: shard.preview, directory: directory, config: config,
            columns: model.columns + (evaluating ? LogColumn.heldOut(after: model.columns) : []),
            banner: "aetrain: \(shard.info.examples) examples of \(shard.info.imageShape) from \(shard.info.source), \(model.banner), "
                + "\(comm.size) rank(s) × \(threads) BLAS thread(s)"
                + (resumed.map { ", resumed at iteration \(first) from \($0.file)" } ?? ""),
            warnings: resumed?.warnings ?? [], firstIteration: first, currentFilters: model.currentFilters)
        try onRoot(observers) { try $0.started(info) }

        let checkpoints = CheckpointFolder(run: directory)
        var lastCheckpoint = resumed.map { URL(fileURLWithPath: $0.file) }
        comm.setRecoveryHint(model.checkpoints
            ? "the last checkpoint is in \(checkpoints.url.relativePath); continue with: aetrain train --resume \(directory.relativePath)"
            : "run the command again")
        func checkpoint(_ iteration: Int) throws {
            guard model.checkpoints else { return }
            let state = try model.checkpointState()
            let header = Checkpoint.Header(
                model: kind, runID: runID, iteration: iteration, settings: settings, datasetFingerprint: shard.info.fingerprint,
                examples: shard.info.examples, shape: model.shape, samplerRNG: state.samplerRNG?.map { String($0, radix: 16) },
                ranks: comm.size, written: ISO8601DateFormatter().string(from: Date()))
            try comm.collectively {
                guard comm.isRoot else { return }
                let file = try checkpoints.write(Checkpoint(header: header, values: state.sections), keep: plan.checkpoints.keep)
                lastCheckpoint = file
                for o in observers { o.checkpointed(file) }
            }
        }

        // The loop.
        var outcome = RunOutcome.finished
        var iteration = first, previousLog = first - 1
        let start = DispatchTime.now().uptimeNanoseconds
        while iteration < settings.iterations {
            let step = try model.iterate(iteration, stop: StopRequest.received)
            guard step.completed else {
                try checkpoint(iteration)
                outcome = .stopped(iteration: iteration)
                break
            }
            var record = step.record
            if let bad = record.firstNonFinite {
                outcome = .diverged(iteration: iteration, term: bad.name, value: bad.value)
                break
            }
            if comm.isRoot { for o in observers { o.iterated(iteration, loss: record.loss) } }
            if iteration % settings.logEvery == 0 || iteration == settings.iterations - 1 {
                guard try comm.allAgree(on: model.checksum()) else {
                    throw UserError("ranks hold different parameters at iteration \(iteration) (checksums differ): the ranks ran different code or data")
                }
                record.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                model.closeWindow(&record)
                if evaluating { try evaluateHeldOut(model, shard: shard, into: &record) }
                let steps = iteration - previousLog
                try onRoot(observers) { try $0.logged(record, steps: steps) }
                previousLog = iteration
            }
            iteration += 1
            applyTestHooks(after: iteration, model: model)
            if step.stopRequested {
                try checkpoint(iteration)
                outcome = .stopped(iteration: iteration)
                break
            }
            if plan.checkpoints.every > 0, iteration % plan.checkpoints.every == 0, iteration < settings.iterations {
                try checkpoint(iteration)
            }
        }
        if outcome == .finished { try checkpoint(iteration) }

        // Outputs: only finite parameters are written; the rest describes them.
        let finite = model.parametersAreFinite
        let outputs = finite ? try model.outputs() : nil
        let activations = finite ? try firstCodes(model, shard: shard, h: settings.hidden) : nil
        if plan.testHooks.rankChecksums {
            let file = directory.appendingPathComponent("checksum.rank\(comm.rank)")
            try comm.collectively { try DurableFile.write(Data(String(model.checksum(), radix: 16).utf8), to: file) }
        }
        let result = RunResult(outcome: outcome, directory: directory, outputs: outputs, activations: activations,
                               hidden: settings.hidden, dataset: shard.info, mean: shard.pixelMean, lastCheckpoint: lastCheckpoint)
        try onRoot(observers) { try $0.finished(result) }
        if case let .diverged(at, term, value) = outcome {
            let kept = finite ? "the weights from before iteration \(at) are in \(directory.relativePath)" : "no weights were written (they were no longer finite)"
            let last = lastCheckpoint.map { "; the last good checkpoint is \($0.path)" } ?? ""
            throw UserError("the loss became non-finite at iteration \(at) (\(term) = \(value)); \(kept)\(last). Try a smaller ⟨learning-rate⟩.")
        }
        return outcome
    }

    // MARK: Parts of `run`

    private func resolveModel(_ resumed: ResumePoint?) throws -> ModelKind {
        let recorded = resumed.map { $0.checkpoint.header.model ?? .sparseAutoencoder }
        if let recorded, let asked = plan.model, asked != recorded {
            throw UserError("\(resumed?.file ?? ""): a \(recorded.rawValue) run; it cannot continue as \(asked.rawValue)")
        }
        return plan.model ?? recorded ?? .sparseAutoencoder
    }

    /// This rank's shard. A resumed run reads the data it recorded unless told otherwise.
    private func loadData(_ resumed: ResumePoint?) throws -> (DatasetShard, DataPlan) {
        let recorded = resumed?.config
        let given = plan.data.argument
        let argument = given ?? recorded?.data
        let lfw = given == nil ? (recorded?.lfw ?? plan.data.lfw ?? LFWSettings()) : (plan.data.lfw ?? LFWSettings())
        let shape = plan.data.imageShape ?? (given == nil ? recorded?.imageShape : nil)
        let seed = plan.overrides.seed ?? resumed?.checkpoint.header.settings.seed ?? 0
        let source = try comm.collectively { try DataSource(argument: argument, seed: seed, lfw: lfw) }
        let shard = try DatasetShard.load(source, imageShape: shape.flatMap(ImageShape.init(parsing:)), comm: comm)
        // What config.json records, so that --resume finds the same data.
        let isTree: Bool = if case .lfw = source { true } else { false }
        return (shard, DataPlan(argument: argument, lfw: isTree ? lfw : nil, imageShape: shape))
    }

    /// The files and directories the run reads: the data (a file or an LFW tree) and `--init`.
    private func inputs(_ data: DataPlan) -> [URL] {
        var urls = plan.start.weightsDirectory.map { [URL(fileURLWithPath: $0)] } ?? []
        if let argument = data.argument, FileManager.default.fileExists(atPath: argument) { urls.append(URL(fileURLWithPath: argument)) }
        return urls
    }

    private func makeModel(_ kind: ModelKind, shard: DatasetShard, settings: TrainSettings, initial: ModelWeights?) throws -> TrainableModel {
        switch kind {
        case .sparseAutoencoder:
            var options = plan.execution.stepOptions
            options.overlap = plan.execution.overlap.enabled(comm)
            return try SparseAutoencoder(shard: shard, settings: settings, comm: comm, initial: initial, options: options)
        case .sparseCoding: return try SparseCodingModel(shard: shard, settings: settings, comm: comm)
        case .tiedLinear: return try TiedLinearModel(shard: shard, settings: settings, comm: comm)
        case .pca: return try PCAModel(shard: shard, components: settings.hidden, comm: comm)
        }
    }

    /// The standard outputs: the table (unless quiet), the live line, config.json and
    /// metrics.jsonl, dataset.png and filters.png, the model's files and the TensorBoard events.
    private func standardObservers(_ kind: ModelKind) -> [RunObserver] {
        guard comm.isRoot else { return [] }
        let table = LogTable(quiet: plan.output.quiet)
        return [table, ProgressLine(mode: plan.output.quiet ? .never : plan.output.progress, table: table),
                RunFiles(), ImageExport(), ModelFiles(), TensorBoardWriter(directory: plan.output.tensorboard)]
    }

    /// Calls `body` on each observer on rank 0; a failure there stops every rank.
    private func onRoot(_ observers: [RunObserver], _ body: (RunObserver) throws -> Void) throws {
        try comm.collectively {
            guard comm.isRoot else { return }
            for o in observers { try body(o) }
        }
    }

    /// The held-out terms of a log line: every held-out example, each rank its own, reduced.
    private func evaluateHeldOut(_ model: TrainableModel, shard: DatasetShard, into record: inout LogRecord) throws {
        let sums = model.heldOutSums(ofRows: shard.heldOutRows)
        var values = [sums.squaredError, sums.squaredNorm, sums.active, sums.examples] + sums.fired
        try comm.allreduceSum(&values)
        let n = max(values[3], 1)
        record.evalRec = values[0] / n
        record.evalExplainedVariance = values[1] > 0 ? 1 - values[0] / values[1] : nil
        if !sums.fired.isEmpty {
            record.evalL0 = values[2] / n
            record.evalDeadUnits = values[4...].filter { $0 == 0 }.count
        }
    }

    /// The codes (k, h) of the dataset's first k examples, gathered on rank 0 (nil elsewhere).
    private func firstCodes(_ model: TrainableModel, shard: DatasetShard, h: Int) throws -> [Float]? {
        let k = min(Self.codeExamples, shard.info.examples)
        let mine = shard.rows.clamped(to: 0..<k)
        let local = mine.isEmpty ? [] : model.codes(ofRows: mine)
        let all = try DatasetShard.gatherFirstRows(k, width: h, local: local, examples: shard.info.examples, comm: comm)
        return comm.isRoot ? all : nil
    }

    private func applyTestHooks(after done: Int, model: TrainableModel) {
        let hooks = plan.testHooks
        if hooks.perturbRank == comm.rank, done == 1 { model.perturb() }
        if hooks.signalRank == comm.rank, hooks.signalAt == done { StopRequest.raise(SIGTERM) }
    }
}

extension StartPoint {
    var resumeDirectory: String? { if case .resume(let dir) = self { dir } else { nil } }
    var weightsDirectory: String? { if case .weights(let dir) = self { dir } else { nil } }
}

public enum Cores {
    /// This node's online cores shared among the ranks on this node, at least 1.
    public static func perRank(_ comm: Communicator) -> Int {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, cores / max(1, comm.localSize))
    }
}
