import AETrainCore
import AETrainMPI
import ArgumentParser
import CProcessControl
import Foundation

struct Train: RankCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a sparse autoencoder (the sheet's Exercise 3) and write its weights.",
        discussion: """
            Defaults are the sheet's train(): h = 400, ε = 0.01·λ, η = λ, Adam(lr 1e-4), batch 100, \
            iterations 0 … 10000. Without --data, trains on the 100 LFW face crops (25x25) shipped with aetrain.
            Writes V.npy (d, h), W.npy (h, d), b.npy (h), a.npy (d), model.safetensors, config.json, metrics.jsonl, \
            dataset.png, filters.png, activations.npy and checkpoints/ to --out.
            With --resume DIR, continues the run in DIR from its newest valid checkpoint, with the settings \
            recorded there (flags given explicitly must agree, except --iterations, which may extend the run).
            """)

    @Option(help: "The model: sparse-autoencoder (Exercise 3), sparse-coding (Exercise 1) or tied-linear (Exercise 2).")
    var model: ModelKind = .sparseAutoencoder
    @Option(help: "Sparse coding: FISTA steps per source update.")
    var fistaSteps: Int = 100
    @Option(help: "Sparse coding: source update, fista (exact L1) or relaxed (the sheet's closed form as a line-search end point).")
    var sourceUpdate: SparseCoding.SourceUpdate = .fista

    // Data
    @Option(help: "Training data: a .npy file (N×H×W, or N×D with --image-shape), an LFW JPEG tree, or synthetic:N,H,W. Default: the embedded LFW faces.")
    var data: String?
    @Option(help: "Image shape HxW, for N×D data.")
    var imageShape: String?
    @Option(help: "For an LFW JPEG tree: scale of the 125x94 face crop (0.3 gives 37x28).")
    var lfwResize: Double = 0.5
    @Option(help: "For an LFW JPEG tree: keep only people with at least this many images.")
    var minFacesPerPerson: Int = 0

    // Trajectory (optional so that --resume can tell given flags from defaults)
    @Option(name: .customLong("lambda"), help: "λ, weight of the L1 sparsity term (default 0).")
    var lambda: Double?
    @Option(help: "ε, weight of the entropy term (default 0.01·λ).")
    var eps: Double?
    @Option(help: "η, weight of ‖W‖² (default λ).")
    var eta: Double?
    @Option(help: "δ, floor on a unit's batch-mean activation in the entropy term (default 1e-6).")
    var entropyFloor: Double?
    @Option(help: "Hidden units h (default 400, or the --init weights' h).")
    var hidden: Int?
    @Option(help: "Adam learning rate (default 1e-4).")
    var lr: Double?
    @Option(help: "Adam β1 (default 0.9).") var beta1: Double?
    @Option(help: "Adam β2 (default 0.999).") var beta2: Double?
    @Option(help: "Adam ε (default 1e-8).") var adamEps: Double?
    @Option(help: "Examples per step, the global batch whatever the number of ranks (default 100).")
    var batchSize: Int?
    @Option(help: "Seed of the initial weights, the batch sampler and synthetic data (default 0).")
    var seed: UInt64?
    @Option(help: "Iterations, numbered 0 ..< this (default 10001).")
    var iterations: Int?
    @Option(help: "Print the table and write metrics every this many iterations, and at the last (default 1000).")
    var logEvery: Int?

    // Starting point and outputs
    @Option(name: .customLong("init"), help: "Start from the V.npy, W.npy, b.npy, a.npy in this directory.")
    var initDirectory: String?
    @Option(help: "Continue the run in this directory from its newest valid checkpoint.")
    var resume: String?
    @Option(help: "Output directory (default aetrain-run, or the --resume directory).")
    var out: String?
    @Option(help: "Write a checkpoint every this many iterations (0: only at the end and when stopped).")
    var checkpointEvery: Int = 1000
    @Option(help: "Checkpoints to keep (the newest).")
    var keepCheckpoints: Int = 3

    // Execution
    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).")
    var threads: Int?
    @Option(help: "Kernels for the decoder and the backward pass: auto (sparse when few activations are nonzero), dense or sparse.")
    var kernels: ActivationPath = .auto
    @Option(help: "With --kernels auto: take the sparse kernels when at most this fraction of a rank's activations is nonzero.")
    var sparseBelow: Double = StepOptions().sparseBelow
    @Option(help: "Overlap the allreduce of the decoder's gradient with the encoder's backward pass: auto (when the ranks span several nodes), always or never.")
    var overlap: OverlapMode = .auto
    @Option(help: "Seconds a rank waits in a collective before it declares a peer dead and ends the job.")
    var peerTimeout: Double = 60
    @Flag(help: "Print nothing but errors.")
    var quiet = false
    @Option(help: "The live progress line: auto (on a terminal, not under mpirun), always or never.")
    var progress: Console.Mode = .auto

    // Test hooks, hidden from --help.
    @Option(help: .hidden) var debugPerturbRank: Int?
    @Flag(help: .hidden) var debugRankChecksums = false
    @Option(help: .hidden) var debugSignalRank: Int?
    @Option(help: .hidden) var debugSignalAt: Int?

    func validate() throws {
        if let imageShape, ImageShape(parsing: imageShape) == nil {
            throw ValidationError("--image-shape must be HxW with positive integers, e.g. 37x28; got '\(imageShape)'")
        }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
        if checkpointEvery < 0 { throw ValidationError("--checkpoint-every must be ≥ 0, got \(checkpointEvery)") }
        if !(sparseBelow >= 0 && sparseBelow <= 1) { throw ValidationError("--sparse-below must be in [0, 1], got \(sparseBelow)") }
        if keepCheckpoints <= 0 { throw ValidationError("--keep-checkpoints must be positive, got \(keepCheckpoints)") }
        if !(peerTimeout > 0 && peerTimeout.isFinite) { throw ValidationError("--peer-timeout must be positive, got \(peerTimeout)") }
        if resume != nil, initDirectory != nil { throw ValidationError("--init and --resume exclude each other") }
        if fistaSteps <= 0 { throw ValidationError("--fista-steps must be positive, got \(fistaSteps)") }
        if model != .sparseAutoencoder, resume != nil || initDirectory != nil {
            throw ValidationError("--resume and --init are for the sparse autoencoder")
        }
    }

    /// The flags given on the command line applied over `base` (a checkpoint's settings) or the sheet's defaults.
    func settings(base: TrainSettings?, defaultHidden: Int) -> TrainSettings {
        var s = base ?? TrainSettings()
        if base == nil { s.hidden = defaultHidden }
        if let hidden { s.hidden = hidden }
        let λ = lambda ?? s.objective.lambda
        let derive = base == nil || lambda != nil  // ε and η follow λ unless the checkpoint fixed them
        s.objective = ObjectiveSettings(
            lambda: λ, epsilon: eps ?? (derive ? 0.01 * λ : s.objective.epsilon), eta: eta ?? (derive ? λ : s.objective.eta),
            entropyFloor: entropyFloor ?? s.objective.entropyFloor)
        if let lr { s.adam.learningRate = lr }
        if let beta1 { s.adam.beta1 = beta1 }
        if let beta2 { s.adam.beta2 = beta2 }
        if let adamEps { s.adam.epsilon = adamEps }
        if let batchSize { s.batchSize = batchSize }
        if let seed { s.seed = seed }
        if let iterations { s.iterations = iterations }
        if let logEvery { s.logEvery = logEvery }
        return s
    }

    func run(comm: MPICommunicator) throws {
        try settings(base: nil, defaultHidden: 400).validate()
        let outPath = out ?? resume ?? "aetrain-run"
        let threadsPerRank = threads ?? Cores.perRank(comm)
        BLASThreads.set(threadsPerRank)
        Denormals.flushToZero()
        aet_signals_install()

        // A resumed run reads its checkpoint and its recorded data source first.
        let resumed = try resume.map { try ResumePoint.load(directory: $0, comm: comm) }
        let recorded = resumed?.config
        let dataArgument = data ?? recorded?.data
        let lfw = data == nil ? (recorded?.lfw ?? LFWSettings()) : LFWSettings(resize: lfwResize, minFacesPerPerson: minFacesPerPerson)
        let shapeArgument = imageShape ?? (data == nil ? recorded?.imageShape : nil)
        let base = resumed?.checkpoint.header.settings
        let source = try DataSource(argument: dataArgument, seed: seed ?? base?.seed ?? 0, lfw: lfw)
        let shard = try DatasetShard.load(source, imageShape: shapeArgument.flatMap(ImageShape.init(parsing:)), comm: comm)
        let initial = try initDirectory.map { dir in
            try comm.collectively { try ModelWeights.load(from: URL(fileURLWithPath: dir)) }
        }
        var settings = settings(base: base, defaultHidden: initial?.shape.h ?? 400)
        if model == .sparseCoding {
            if iterations == nil { settings.iterations = 30 }  // alternations, each a full pass
            if logEvery == nil { settings.logEvery = 1 }
            try settings.validate()
            return try runSparseCoding(shard: shard, settings: settings, outPath: outPath, comm: comm, threads: threadsPerRank)
        }
        if model == .tiedLinear {
            try settings.validate()
            return try runTiedLinear(shard: shard, settings: settings, outPath: outPath, comm: comm, threads: threadsPerRank)
        }
        let trainer = try comm.collectively { () throws -> Trainer in
            guard settings.batchSize >= comm.size else {
                throw UserError("--batch-size \(settings.batchSize) is smaller than the number of ranks (\(comm.size))")
            }
            let trainer = try Trainer(shard: shard, settings: settings, comm: comm, initial: initial,
                                      options: StepOptions(path: kernels, sparseBelow: sparseBelow, overlap: overlap.enabled(comm)))
            if let resumed { try trainer.restore(resumed.checkpoint, file: resumed.file) }
            return trainer
        }

        // Only rank 0 touches the output directory; its errors stop every rank.
        let directory = try comm.collectively { () throws -> RunDirectory? in
            guard comm.isRoot else { return nil }
            let dir = try RunDirectory(path: outPath)
            try dir.writeConfig(RunConfig(
                settings: settings, dataset: shard.info, ranks: comm.size, blasThreadsPerRank: threadsPerRank,
                started: ISO8601DateFormatter().string(from: Date()), commandLine: CommandLine.arguments,
                data: dataArgument, lfw: lfw, imageShape: shapeArgument, resumedFrom: resumed?.file))
            try dir.startMetrics(keepingBefore: trainer.iteration)
            try PNGFile.write(Mosaic.grid(shard.preview, shape: shard.info.imageShape), to: dir.url.appendingPathComponent("dataset.png"))
            return dir
        }
        let console = Console(quiet: quiet || !comm.isRoot, total: settings.iterations, mode: progress)
        console.first = trainer.iteration
        for warning in resumed?.warnings ?? [] where comm.isRoot { fputs(warning + "\n", stderr) }
        console.line("aetrain: \(shard.info.examples) examples of \(shard.info.imageShape) from \(shard.info.source), "
                     + "h = \(settings.hidden), λ = \(settings.objective.lambda), ε = \(settings.objective.epsilon), "
                     + "η = \(settings.objective.eta), \(comm.size) rank(s) × \(threadsPerRank) BLAS thread(s)"
                     + (resumed.map { ", resumed at iteration \($0.checkpoint.header.iteration) from \($0.file)" } ?? ""))
        console.line(SheetTable.header)

        installTestHooks(trainer, comm: comm)
        trainer.stopSignal = { aet_signal_received() != 0 }
        trainer.checkpointEvery = checkpointEvery
        let folder = CheckpointFolder(run: URL(fileURLWithPath: outPath))
        var lastCheckpoint = resumed?.file
        trainer.checkpoint = { t in
            try comm.collectively {
                guard comm.isRoot else { return }
                lastCheckpoint = try folder.write(Checkpoint(t), keep: keepCheckpoints).path
            }
        }
        if console.live {
            let objective = settings.objective
            trainer.onStep = { iteration, terms in console.step(iteration, loss: terms.loss(objective)) }
        }
        comm.startWatchdog(timeout: peerTimeout, message: "a rank died or its host was cut off; the last checkpoint is in "
                           + "\(outPath)/checkpoints; continue with: aetrain train --resume \(outPath)")

        var previous = trainer.iteration - 1
        let outcome = try trainer.run { record in
            guard let directory else { return }
            console.line(SheetTable.row(record, steps: record.iteration - previous))
            previous = record.iteration
            try directory.appendMetrics(record)
        }
        console.finish()

        if debugRankChecksums {
            let file = URL(fileURLWithPath: outPath).appendingPathComponent("checksum.rank\(comm.rank)")
            try comm.collectively { try AtomicFile.write(Data(String(trainer.store.checksum(), radix: 16).utf8), to: file) }
        }
        // Weights are written only if finite; the rest describes them.
        let weightsFinite = trainer.store.parametersAreFinite()
        let activations = weightsFinite ? try trainer.firstActivations(RunArtifacts.activationExamples) : nil
        try comm.collectively {
            guard comm.isRoot, weightsFinite, let directory else { return }
            try RunArtifacts.write(weights: ModelWeights(trainer.store), activations: activations, mean: shard.pixelMean,
                                   imageShape: shard.info.imageShape, to: directory.url)
        }
        switch outcome {
        case .finished:
            console.line("wrote \(outPath)/: \(RunArtifacts.fileNames.joined(separator: ", ")), checkpoints/")
        case .stopped(let iteration):
            if comm.isRoot {
                print("stopped on request (SIGTERM or SIGINT) before iteration \(iteration); checkpoint \(lastCheckpoint ?? "?"); "
                      + "continue with: aetrain train --resume \(outPath)")
            }
        case let .diverged(iteration, term, value):
            let kept = weightsFinite
                ? "the weights from before iteration \(iteration) are in \(outPath)"
                : "no weights were written (they were no longer finite)"
            let checkpoint = lastCheckpoint.map { "; the last good checkpoint is \($0)" } ?? ""
            throw UserError("the loss became non-finite at iteration \(iteration) (\(term) = \(value)); \(kept)\(checkpoint). Try a smaller --lr.")
        }
    }

    /// Fault injection for the tests: drift one rank's parameters, or signal one rank at a step.
    func installTestHooks(_ trainer: Trainer, comm: Communicator) {
        let perturb = debugPerturbRank == comm.rank
        let signalAt = debugSignalRank == comm.rank ? debugSignalAt : nil
        guard perturb || signalAt != nil else { return }
        trainer.afterUpdate = { t in
            if perturb, t.iteration == 1 { t.store.params[0] += 1e-3 }
            if let at = signalAt, t.iteration == at { aet_signal_raise(SIGTERM) }
        }
    }
}

/// The checkpoint a resumed run starts from, read by rank 0 and broadcast, with the run's
/// recorded configuration.
struct ResumePoint {
    var checkpoint: Checkpoint
    var file: String
    var warnings: [String]
    var config: RunConfig?

    static func load(directory: String, comm: Communicator) throws -> ResumePoint {
        let (bytes, file, warnings) = try comm.collectively { () throws -> (Data, String, [String]) in
            guard comm.isRoot else { return (Data(), "", []) }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw UserError("--resume \(directory): no such run directory")
            }
            let found = try CheckpointFolder(run: URL(fileURLWithPath: directory)).newestValid()
            return (try Data(contentsOf: found.file), found.file.path, found.warnings)
        }
        let shared = try comm.broadcast(bytes, root: 0)
        let name = try comm.broadcast(Data(file.utf8), root: 0)
        let checkpoint = try Checkpoint.decode(shared, path: String(decoding: name, as: UTF8.self))
        let configData = try comm.broadcast(comm.isRoot ? ((try? Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent("config.json"))) ?? Data()) : Data(), root: 0)
        let config = try? JSONDecoder().decode(RunConfig.self, from: configData)
        return ResumePoint(checkpoint: checkpoint, file: String(decoding: name, as: UTF8.self), warnings: warnings, config: config)
    }
}

enum Cores {
    /// This node's online cores shared among the ranks on this node, at least 1.
    static func perRank(_ comm: Communicator) -> Int {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, cores / max(1, comm.localSize))
    }
}
