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
    /// `plan.execution` as every rank resolved it (`ExecutionOptions.resolve`): the step's
    /// overlap, shared memory (if the node has room for it: config.json records what the model
    /// got) and determinism (a resumed run's recorded choice).
    private var execution = ResolvedExecution()

    public init(plan: RunPlan, comm: Communicator) {
        self.plan = plan
        self.comm = comm
    }

    @discardableResult
    public func run() throws -> RunOutcome {
        try plan.validate()
        StopRequest.install()
        let threads = plan.execution.threadsPerRank ?? Cores.perRank(comm)
        BLASThreads.set(threads)
        Denormals.flushToZero()
        let prepared = try prepare()
        let session = try open(prepared, threads: threads)
        let trace = try plan.output.trace.map { try startTrace(URL(fileURLWithPath: $0), prepared, session) }
        let outcome = try session.loop()
        if let trace, let path = plan.output.trace { try TraceFile.write(trace, to: URL(fileURLWithPath: path), comm: comm) }
        try session.finish(outcome)
        return outcome
    }

    /// The timeline of `--trace`: the first `TraceRecorder.trainSteps` iterations in full, and
    /// every log line and checkpoint (room computed from the iterations).
    private func startTrace(_ url: URL, _ p: Prepared, _ session: RunSession) throws -> TraceRecorder {
        // `open` checked the path before the run wrote anything.
        let steps = max(0, p.settings.iterations - session.first)
        let every = plan.checkpoints.every
        let others = steps / max(1, p.settings.logEvery) + (every > 0 ? steps / every : 0) + 4
        let trace = try TraceRecorder(maxSteps: min(steps, TraceRecorder.trainSteps), otherSpans: others, comm: comm)
        session.trace = trace
        p.model.record(into: trace)
        return trace
    }

    /// What a run starts from: the model built (and restored) on this rank's shard.
    struct Prepared {
        var definition: any ModelDefinition
        var resumed: ResumePoint?
        var shard: DatasetShard
        /// The data as config.json records it, so that --resume finds the same.
        var data: DataPlan
        var settings: TrainSettings
        var model: TrainableModel
        /// `--eval-data`, normalized with the training statistics: evaluated instead of held-out rows.
        var evalShard: DatasetShard?
    }

    /// Settles the settings (the model's defaults or the checkpoint's, then the flags), loads
    /// the data (holding out the evaluation rows, normalized as the run records or with new
    /// statistics) and builds the model — restored when resuming.
    private func prepare() throws -> Prepared {
        // A resumed run starts from its checkpoint: model, settings and data as recorded.
        let resumed = try plan.start.resumeDirectory.map { try ResumePoint.load(directory: $0, comm: comm) }
        execution = try plan.execution.resolve(comm: comm, resumedDeterministic: resumed?.config?.execution?.deterministic == true)
        let definition = try resolveModel(resumed).definition
        let initial = try plan.start.weightsDirectory.map { dir in
            try comm.collectively { try InitialWeights.load(from: dir) }
        }
        var settings = try TrainSettings.merged(plan.overrides, over: resumed?.checkpoint.header.settings, model: definition.kind,
                                                defaultHidden: initial?.weights.shape.h)
        let normalization = try normalizationPlan(resumed: resumed, initial: initial, settings: &settings)
        let (shard, data) = try loadData(resumed, settings: settings, normalization: normalization)
        let evalShard = try loadEvalData(resumed, settings: settings, definition: definition, training: shard)
        let model = try comm.collectively { () throws -> TrainableModel in
            guard settings.batchSize >= comm.size || !definition.splitsTheBatch else {
                throw UserError("⟨batch-size⟩ \(settings.batchSize) is smaller than the number of ranks (\(comm.size))")
            }
            let model = try definition.make(ModelContext(shard: shard, settings: settings, comm: comm, step: execution.stepOptions,
                                                         gradientSum: plan.execution.gradientSum, initial: initial?.weights))
            if let resumed { try resumed.check(against: settings, shard: shard, model: model, kind: definition.kind) }
            return model
        }
        if let resumed { try comm.collectively { try model.restore(resumed.checkpoint, file: resumed.file) } }
        return Prepared(definition: definition, resumed: resumed, shard: shard, data: data, settings: settings, model: model,
                        evalShard: evalShard)
    }

    /// The statistics a run applies: a resumed run's recorded ones, the `--init` run's, or new
    /// ones of the kind its settings name. `--init` sets the kind when no flag gives it and
    /// refuses another.
    private func normalizationPlan(resumed: ResumePoint?, initial: InitialWeights?, settings: inout TrainSettings) throws -> NormalizationPlan {
        if let resumed {
            // Checkpoints from before normalization was recorded: the sheet's, computed anew.
            guard let stored = try resumed.checkpoint.normalization(file: resumed.file) else { return .compute(settings.normalization) }
            return .given(stored)
        }
        if let given = initial?.normalization {
            if let asked = plan.overrides.normalize, asked != given.kind {
                throw UserError("⟨init⟩ \(initial?.directory ?? ""): its weights were trained with ⟨normalize⟩ \(given.kind.rawValue); "
                                + "they cannot start a run with ⟨normalize⟩ \(asked.rawValue)")
            }
            settings.normalize = given.kind
            let (shape, h) = (initial?.weights.shape, settings.hidden)
            return .given(given) { d in
                "⟨init⟩ weights are for d = \(shape?.d ?? 0) pixels and h = \(shape?.h ?? 0) hidden units, but this run has d = \(d) and h = \(h)"
            }
        }
        return .compute(settings.normalization)
    }

    /// Claims the output directory (rank 0; never another run's, never over an input), records
    /// the run and starts the observers.
    private func open(_ p: Prepared, threads: Int) throws -> RunSession {
        let directory = URL(fileURLWithPath: plan.output.directory ?? plan.start.resumeDirectory ?? plan.output.defaultDirectory)
        let claim = try comm.collectively { () throws -> RunDirectoryClaim? in
            guard comm.isRoot else { return nil }
            try InputOutputPaths.check(output: directory, setting: "out", inputs: inputs(p.data))
            // Resuming continues the run in its own directory; another --out must be free.
            let continuing = plan.start.resumeDirectory.map { InputOutputPaths.real(URL(fileURLWithPath: $0)) == InputOutputPaths.real(directory) } ?? false
            // Every other output checked before the claim writes anything (a refused run leaves
            // no half-created run behind).
            if let events = plan.output.tensorboard.map({ URL(fileURLWithPath: $0) }) {
                try InputOutputPaths.check(output: events, setting: "tensorboard", inputs: inputs(p.data))
                try WritablePlace.checkDirectory(events, setting: "tensorboard")
            }
            if let trace = plan.output.trace.map({ URL(fileURLWithPath: $0) }) {
                try InputOutputPaths.check(output: trace, setting: "trace", inputs: inputs(p.data))
                try WritablePlace.checkFile(trace, setting: "trace", inside: directory)
            }
            return try RunDirectoryClaim(directory, resuming: continuing, overwrite: plan.output.overwrite)
        }
        let first = p.resumed?.checkpoint.header.iteration ?? 0
        // Rank 0's id for a new run, so that every rank records the same one.
        let runID = try p.resumed?.checkpoint.header.runID ?? p.resumed?.config?.runID
            ?? String(decoding: comm.broadcast(Data(UUID().uuidString.utf8), root: 0), as: UTF8.self)
        let session = RunSession(plan: plan, comm: comm, prepared: p, directory: directory, claim: claim, runID: runID,
                                 first: first, observers: standardObservers() + plan.observers)
        let config = RunConfig(
            model: p.definition.kind, runID: runID, settings: p.settings, dataset: p.shard.info, ranks: comm.size, blasThreadsPerRank: threads,
            started: ISO8601DateFormatter().string(from: Date()), commandLine: plan.output.commandLine, data: p.data,
            resumedFrom: p.resumed?.file, checkpoints: p.model.checkpoints ? plan.checkpoints : nil,
            execution: RunConfig.Execution(plan.execution, model: p.definition, resolved: execution,
                                            sharedMemory: p.model.sharesParameterMemory), heldOutRows: p.shard.split?.heldOut,
            normalization: p.shard.normalization.record, evalDataset: p.evalShard?.info)
        var info = RunInfo(
            model: p.definition.kind, settings: p.settings, dataset: p.shard.info, preview: p.shard.preview, directory: directory, config: config,
            columns: p.model.columns + (session.evaluating ? LogColumn.heldOut(after: p.model.columns) : []),
            banner: "aetrain: \(p.shard.info.examples) examples of \(p.shard.info.exampleDescription) from \(p.shard.info.source), "
                + (p.shard.normalization.kind == .sheet ? "" : "normalized \(p.shard.normalization.kind.rawValue), ")
                + "\(p.model.banner), \(comm.size) rank(s) × \(threads) BLAS thread(s)"
                + (p.evalShard.map { ", evaluated on \($0.info.examples) examples of \($0.info.source)" } ?? "")
                + (p.resumed.map { ", resumed at iteration \(first) from \($0.file)" } ?? ""),
            warnings: (p.resumed?.warnings ?? []) + decayWarning(p) + precisionNote(p), firstIteration: first, currentFilters: p.model.currentFilters)
        info.notes = p.model.notes
        try session.onRoot { try $0.started(info) }
        comm.setRecoveryHint(p.model.checkpoints
            ? "the last checkpoint is in \(session.checkpointFolder.url.relativePath); continue with: aetrain train --resume \(directory.relativePath)"
            : "run the command again")
        return session
    }

    // MARK: Parts of `run`

    /// A resumed run whose learning rate decays, given other `--iterations`: where its decay now lies.
    private func decayWarning(_ p: Prepared) -> [String] {
        guard let before = p.resumed?.checkpoint.header.settings, before.iterations != p.settings.iterations,
              p.settings.schedules.lrDecay > 0 else { return [] }
        let t = p.settings.iterations, d = p.settings.schedules.decayIterations(of: t)
        return ["warning: the learning rate decays over the last \(p.settings.schedules.lrDecay) of the iterations: "
                + "with \(t) iterations instead of \(before.iterations), over iterations \(t - d) … \(t - 1)"]
    }

    /// A resumed run whose products change precision (`--precision`): said in one line.
    private func precisionNote(_ p: Prepared) -> [String] {
        guard let before = p.resumed?.checkpoint.header.settings, before.productPrecision != p.settings.productPrecision else { return [] }
        return ["note: the checkpoint trained with \(before.productPrecision.rawValue) products; this run continues with "
                + "\(p.settings.productPrecision.rawValue) products (weights, gradients and Adam stay fp32)"]
    }

    /// The model asked for, the checkpoint's when resuming (they must agree), else the standard one.
    private func resolveModel(_ resumed: ResumePoint?) throws -> ModelKind {
        let recorded = resumed.map { $0.checkpoint.header.model ?? ModelRegistry.standard }
        if let recorded, let asked = plan.model, asked != recorded {
            throw UserError("\(resumed?.file ?? ""): a \(recorded.rawValue) run; it cannot continue as \(asked.rawValue)")
        }
        return plan.model ?? recorded ?? ModelRegistry.standard
    }

    /// This rank's shard. A resumed run reads the data it recorded unless told otherwise.
    private func loadData(_ resumed: ResumePoint?, settings: TrainSettings, normalization: NormalizationPlan) throws -> (DatasetShard, DataPlan) {
        let recorded = resumed?.config
        let given = plan.data.argument
        let argument = given ?? recorded?.data
        let lfw = given == nil ? (recorded?.lfw ?? plan.data.lfw ?? LFWSettings()) : (plan.data.lfw ?? LFWSettings())
        let shape = plan.data.imageShape ?? (given == nil ? recorded?.imageShape : nil)
        let source = try comm.collectively { try DataSource(argument: argument, seed: settings.seed, lfw: lfw) }
        let holdOut = settings.evalFraction.map { HeldOutSplit.Rule(fraction: $0, seed: settings.seed) }
        let shard = try DatasetShard.load(source, imageShape: shape.flatMap(ImageShape.init(parsing:)), comm: comm,
                                          normalization: normalization, holdOut: holdOut)
        // What config.json records, so that --resume finds the same data.
        let isTree: Bool = if case .lfw = source { true } else { false }
        var data = DataPlan(argument: argument, lfw: isTree ? lfw : nil, imageShape: shape)
        data.evalData = plan.data.evalData ?? recorded?.evalData
        return (shard, data)
    }

    /// `--eval-data` (or, resuming, the evaluation data the run recorded): sharded like the
    /// training data and normalized with the training statistics.
    private func loadEvalData(_ resumed: ResumePoint?, settings: TrainSettings, definition: any ModelDefinition,
                              training: DatasetShard) throws -> DatasetShard? {
        let recorded = resumed?.config
        guard let argument = plan.data.evalData ?? recorded?.evalData else { return nil }
        guard definition.evaluatesHeldOut else { throw UserError("⟨eval-data⟩ does not apply to the \(definition.kind.rawValue) model") }
        if let fraction = settings.evalFraction {
            throw UserError("⟨eval-data⟩ and ⟨eval-fraction⟩ \(fraction) exclude each other: evaluate on another file or on held-out rows")
        }
        let lfw = plan.data.lfw ?? recorded?.lfw ?? LFWSettings()
        let (source, shape) = try comm.collectively { () throws -> (DataSource, ImageShape?) in
            let source = try DataSource(argument: argument, seed: settings.seed, lfw: lfw)
            return (source, try EvalData.imageShape(of: source, training: training))
        }
        let shard = try DatasetShard.load(source, imageShape: shape, comm: comm, normalization: .given(training.normalization))
        if let old = recorded?.evalDataset, old.fingerprint != shard.info.fingerprint || old.examples != shard.info.examples {
            throw UserError("⟨eval-data⟩ \(argument) (\(shard.info.examples) examples, fingerprint \(shard.info.fingerprint)) is not the "
                            + "evaluation data this run recorded (\(old.source): \(old.examples) examples, fingerprint \(old.fingerprint)); "
                            + "resume with the same data, so that the eval_ terms stay comparable")
        }
        return shard
    }

    /// The files and directories the run reads: the data (a file or an LFW tree) and `--init`.
    private func inputs(_ data: DataPlan) -> [URL] {
        var urls = plan.start.weightsDirectory.map { [URL(fileURLWithPath: $0)] } ?? []
        for argument in [data.argument, data.evalData].compactMap({ $0 }) {
            let path = FileManager.default.fileExists(atPath: argument) ? argument : DataSource.safetensorsPath(argument)?.0
            if let path, FileManager.default.fileExists(atPath: path) { urls.append(URL(fileURLWithPath: path)) }
        }
        return urls
    }

    /// The standard outputs: the table (unless quiet), the live line, config.json and
    /// metrics.jsonl, dataset.png (with an image shape), the final files as one set (the
    /// model's files, filters.png, activations, mean, feature density) and the TensorBoard events.
    private func standardObservers() -> [RunObserver] {
        guard comm.isRoot else { return [] }
        let table = LogTable(quiet: plan.output.quiet)
        return [table, ProgressLine(mode: plan.output.quiet ? .never : plan.output.progress, table: table),
                RunFiles(), ImageExport(), FinalFiles(),
                TensorBoardWriter(directory: plan.output.tensorboard)]
    }

}

extension StartPoint {
    var resumeDirectory: String? { if case .resume(let dir) = self { dir } else { nil } }
    var weightsDirectory: String? { if case .weights(let dir) = self { dir } else { nil } }
}

public enum Cores {
    /// The cores this rank may use (`NodeCores.usable()`) shared among the ranks on this node,
    /// at least 1.
    public static func perRank(_ comm: Communicator) -> Int {
        max(1, NodeCores.usable() / max(1, comm.localSize))
    }
}
