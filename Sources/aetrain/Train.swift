import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Train: RankCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a sparse autoencoder (the sheet's Exercise 3) and write its weights.",
        discussion: """
            Defaults are the sheet's train(): h = 400, ε = 0.01·λ, η = λ, Adam(lr 1e-4), batch 100, \
            iterations 0 … 10000. Without --data, trains on the 100 LFW face crops (25x25) shipped with aetrain.
            Writes V.npy (d, h), W.npy (h, d), b.npy (h), a.npy (d), config.json and metrics.jsonl to --out.
            """)

    @Option(help: "Training data: a .npy file (N×H×W, or N×D with --image-shape), or synthetic:N,H,W. Default: the embedded LFW faces.")
    var data: String?

    @Option(help: "Image shape HxW, for N×D data.")
    var imageShape: String?

    @Option(help: "For an LFW JPEG tree: scale of the 125x94 face crop (0.3 gives 37x28).")
    var lfwResize: Double = 0.5

    @Option(help: "For an LFW JPEG tree: keep only people with at least this many images.")
    var minFacesPerPerson: Int = 0

    @Option(name: .customLong("lambda"), help: "λ, weight of the L1 sparsity term.")
    var lambda: Double = 0

    @Option(help: "ε, weight of the entropy term (default 0.01·λ).")
    var eps: Double?

    @Option(help: "η, weight of ‖W‖² (default λ).")
    var eta: Double?

    @Option(help: "δ, floor on a unit's batch-mean activation in the entropy term.")
    var entropyFloor: Double = 1e-6

    @Option(help: "Hidden units h (default 400, or the --init weights' h).")
    var hidden: Int?

    @Option(help: "Adam learning rate.")
    var lr: Double = 1e-4

    @Option(help: "Adam β1.") var beta1: Double = 0.9
    @Option(help: "Adam β2.") var beta2: Double = 0.999
    @Option(help: "Adam ε.") var adamEps: Double = 1e-8

    @Option(help: "Examples per step (the global batch, whatever the number of ranks).")
    var batchSize: Int = 100

    @Option(help: "Iterations, numbered 0 ..< this.")
    var iterations: Int = 10001

    @Option(help: "Print the table and write metrics every this many iterations (and at the last).")
    var logEvery: Int = 1000

    @Option(help: "Seed of the initial weights, the batch sampler and synthetic data.")
    var seed: UInt64 = 0

    @Option(name: .customLong("init"), help: "Start from the V.npy, W.npy, b.npy, a.npy in this directory.")
    var initDirectory: String?

    @Option(help: "Output directory.")
    var out: String = "aetrain-run"

    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).")
    var threads: Int?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    // Test hooks, hidden from --help.
    @Option(help: .hidden) var debugPerturbRank: Int?
    @Flag(help: .hidden) var debugRankChecksums = false

    func validate() throws {
        if let imageShape, ImageShape(parsing: imageShape) == nil {
            throw ValidationError("--image-shape must be HxW with positive integers, e.g. 37x28; got '\(imageShape)'")
        }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
    }

    func settings(hidden defaultHidden: Int) -> TrainSettings {
        var s = TrainSettings()
        s.hidden = hidden ?? defaultHidden
        s.objective = ObjectiveSettings(lambda: lambda, epsilon: eps, eta: eta, entropyFloor: entropyFloor)
        s.adam.learningRate = lr
        s.adam.beta1 = beta1
        s.adam.beta2 = beta2
        s.adam.epsilon = adamEps
        s.batchSize = batchSize
        s.iterations = iterations
        s.logEvery = logEvery
        s.seed = seed
        return s
    }

    func run(comm: MPICommunicator) throws {
        try settings(hidden: 400).validate()
        let threadsPerRank = threads ?? Cores.perRank(comm)
        BLASThreads.set(threadsPerRank)

        let source = try DataSource(argument: data, seed: seed,
                                    lfw: LFWSettings(resize: lfwResize, minFacesPerPerson: minFacesPerPerson))
        let shard = try DatasetShard.load(source, imageShape: imageShape.flatMap(ImageShape.init(parsing:)), comm: comm)
        let initial = try initDirectory.map { dir in
            try comm.collectively { try ModelWeights.load(from: URL(fileURLWithPath: dir)) }
        }
        let settings = settings(hidden: initial?.shape.h ?? 400)
        let trainer = try comm.collectively { try Trainer(shard: shard, settings: settings, comm: comm, initial: initial) }

        // Only rank 0 touches the output directory; its errors stop every rank.
        let directory = try comm.collectively { () throws -> RunDirectory? in
            guard comm.isRoot else { return nil }
            let dir = try RunDirectory(path: out)
            try dir.writeConfig(RunConfig(
                settings: settings, dataset: shard.info, ranks: comm.size, blasThreadsPerRank: threadsPerRank,
                started: ISO8601DateFormatter().string(from: Date()), commandLine: CommandLine.arguments))
            try dir.startMetrics()
            try PNGFile.write(Mosaic.grid(shard.preview, shape: shard.info.imageShape), to: dir.url.appendingPathComponent("dataset.png"))
            return dir
        }
        let console = Console(quiet: quiet || !comm.isRoot, total: settings.iterations)
        console.line("aetrain: \(shard.info.examples) examples of \(shard.info.imageShape) from \(shard.info.source), "
                     + "h = \(settings.hidden), λ = \(settings.objective.lambda), ε = \(settings.objective.epsilon), "
                     + "η = \(settings.objective.eta), \(comm.size) rank(s) × \(threadsPerRank) BLAS thread(s)")
        console.line(SheetTable.header)

        if let rank = debugPerturbRank, rank == comm.rank {
            // Makes this rank's parameters differ from the others' after the first update,
            // so that tests can see the log-step checksum comparison stop the run.
            trainer.afterUpdate = { t in if t.iteration == 1 { t.store.params[0] += 1e-3 } }
        }
        if console.live {
            let objective = settings.objective
            trainer.onStep = { iteration, terms in console.step(iteration, loss: terms.loss(objective)) }
        }
        var previous = -1
        let outcome = try trainer.run { record in
            guard let directory else { return }
            console.line(SheetTable.row(record, steps: record.iteration - previous))
            previous = record.iteration
            try directory.appendMetrics(record)
        }
        console.finish()

        if debugRankChecksums {
            let file = URL(fileURLWithPath: out).appendingPathComponent("checksum.rank\(comm.rank)")
            try comm.collectively { try AtomicFile.write(Data(String(trainer.store.checksum(), radix: 16).utf8), to: file) }
        }
        // Weights are written only if finite; the rest describes them.
        let weightsFinite = trainer.store.parametersAreFinite()
        let activations = weightsFinite ? try trainer.firstActivations(RunArtifacts.activationExamples) : nil
        try comm.collectively {
            guard comm.isRoot, weightsFinite, let directory else { return }
            try RunArtifacts.write(weights: ModelWeights(trainer.store), activations: activations,
                                   imageShape: shard.info.imageShape, to: directory.url)
        }
        switch outcome {
        case .finished:
            console.line("wrote \(out)/: \(RunArtifacts.fileNames.joined(separator: ", "))")
        case let .diverged(iteration, term, value):
            let kept = weightsFinite
                ? "the weights from before iteration \(iteration) are in \(out)"
                : "no weights were written (they were no longer finite)"
            throw UserError("the loss became non-finite at iteration \(iteration) (\(term) = \(value)); \(kept). Try a smaller --lr.")
        }
    }
}

enum Cores {
    /// This node's online cores shared among the ranks on this node, at least 1.
    static func perRank(_ comm: Communicator) -> Int {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, cores / max(1, comm.localSize))
    }
}
