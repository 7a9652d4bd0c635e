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

    @discardableResult
    public func run() throws -> RunOutcome {
        try plan.validate()
        StopRequest.install()
        let threads = plan.execution.threadsPerRank ?? Cores.perRank(comm)
        BLASThreads.set(threads)
        Denormals.flushToZero()
        let session = try open(try prepare(), threads: threads)
        let outcome = try session.loop()
        try session.finish(outcome)
        return outcome
    }

    /// What a run starts from: the model built (and restored) on this rank's shard.
    struct Prepared {
        var kind: ModelKind
        var resumed: ResumePoint?
        var shard: DatasetShard
        /// The data as config.json records it, so that --resume finds the same.
        var data: DataPlan
        var settings: TrainSettings
        var model: TrainableModel
    }

    /// Loads the data, settles the settings (the model's defaults or the checkpoint's, then
    /// the flags), holds out the evaluation rows, and builds the model — restored when resuming.
    private func prepare() throws -> Prepared {
        // A resumed run starts from its checkpoint: model, settings and data as recorded.
        let resumed = try plan.start.resumeDirectory.map { try ResumePoint.load(directory: $0, comm: comm) }
        let kind = try resolveModel(resumed)
        let (shard, data) = try loadData(resumed)
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
        return Prepared(kind: kind, resumed: resumed, shard: shard, data: data, settings: settings, model: model)
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
            let events = plan.output.tensorboard.map { [URL(fileURLWithPath: $0)] } ?? []
            for output in events { try InputOutputPaths.check(output: output, setting: "tensorboard", inputs: inputs(p.data)) }
            return try RunDirectoryClaim(directory, resuming: continuing, overwrite: plan.output.overwrite)
        }
        let first = p.resumed?.checkpoint.header.iteration ?? 0
        // Rank 0's id for a new run, so that every rank records the same one.
        let runID = try p.resumed?.checkpoint.header.runID ?? p.resumed?.config?.runID
            ?? String(decoding: comm.broadcast(Data(UUID().uuidString.utf8), root: 0), as: UTF8.self)
        let session = RunSession(plan: plan, comm: comm, prepared: p, directory: directory, claim: claim, runID: runID,
                                 first: first, observers: standardObservers(p.kind) + plan.observers)
        let config = RunConfig(
            model: p.kind, runID: runID, settings: p.settings, dataset: p.shard.info, ranks: comm.size, blasThreadsPerRank: threads,
            started: ISO8601DateFormatter().string(from: Date()), commandLine: plan.output.commandLine, data: p.data,
            resumedFrom: p.resumed?.file, checkpoints: p.model.checkpoints ? plan.checkpoints : nil,
            execution: RunConfig.Execution(plan.execution, kind: p.kind, comm: comm), heldOutRows: p.shard.split?.heldOut)
        let info = RunInfo(
            model: p.kind, settings: p.settings, dataset: p.shard.info, preview: p.shard.preview, directory: directory, config: config,
            columns: p.model.columns + (session.evaluating ? LogColumn.heldOut(after: p.model.columns) : []),
            banner: "aetrain: \(p.shard.info.examples) examples of \(p.shard.info.imageShape) from \(p.shard.info.source), "
                + "\(p.model.banner), \(comm.size) rank(s) × \(threads) BLAS thread(s)"
                + (p.resumed.map { ", resumed at iteration \(first) from \($0.file)" } ?? ""),
            warnings: p.resumed?.warnings ?? [], firstIteration: first, currentFilters: p.model.currentFilters)
        try session.onRoot { try $0.started(info) }
        comm.setRecoveryHint(p.model.checkpoints
            ? "the last checkpoint is in \(session.checkpointFolder.url.relativePath); continue with: aetrain train --resume \(directory.relativePath)"
            : "run the command again")
        return session
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
            options.overlap = !options.deterministic && plan.execution.overlap.enabled(comm)
            options.threads = plan.execution.threadsPerRank ?? Cores.perRank(comm)
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
