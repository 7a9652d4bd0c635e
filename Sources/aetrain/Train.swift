import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Train: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (default: the sheet's sparse autoencoder) and write its weights.",
        discussion: """
            The sparse autoencoder's defaults are the sheet's train(): h = 400, ε = 0.01·λ, η = λ, Adam(lr 1e-4), \
            batch 100, iterations 0 … 10000. Sparse coding's: λ = 1, η = 0.01, h = 400, 30 alternations. The tied \
            linear autoencoder's: k = 64, lr 1e-3, 5001 iterations. Without --data, trains on the 100 LFW face crops \
            (25x25) shipped with aetrain. Every model writes config.json, metrics.jsonl, activations.npy, mean.npy and \
            checkpoints/ to --out, and its own weights; dataset.png and filters.png when the data has an image shape; \
            feature_density.svg/.npy when its codes are sparse (sparse autoencoder, sparse coding).
            With --resume DIR, continues the run in DIR from its newest valid checkpoint, with the model, settings \
            and data recorded there (flags given explicitly must agree, except --iterations, which may extend the run).
            --normalize (default sheet) is part of the model: its statistics are recorded (config.json, mean.npy, \
            checkpoints) and applied by evaluation, encode, export, --init and --resume.
            Negative numbers need the form --flag=-1.
            """)

    @Option(help: "The model: sparse-autoencoder (Exercise 3, default), sparse-coding (Exercise 1) or tied-linear (Exercise 2).")
    var model: ModelKind?
    @OptionGroup var data: DataFlags
    @Option(help: "Evaluate at every log line on this data (a path, synthetic:N,H,W or embedded) instead of held-out rows: sharded like the training data, normalized with the training statistics, the same D. Excludes --eval-fraction.")
    var evalData: String?
    @OptionGroup var trajectory: TrajectoryFlags

    // Starting point and outputs
    @Option(name: .customLong("init"), help: "Start a sparse autoencoder from the V.npy, W.npy, b.npy, a.npy in this directory.")
    var initDirectory: String?
    @Option(help: "Continue the run in this directory from its newest valid checkpoint.")
    var resume: String?
    @Option(help: "Output directory (default aetrain-run, or the --resume directory).")
    var out: String?
    @Option(help: "Write the TensorBoard event file to this directory instead of the output directory.")
    var tensorboard: String?
    @Option(help: "Write a timeline of the first 1000 iterations (every rank's spans: products, collectives' waits, Adam), log lines and checkpoints to this file as Chrome trace-event JSON (opens in Perfetto or chrome://tracing).")
    var trace: String?
    @Flag(help: "Start a new run in a directory that holds another run's files, removing them first (otherwise refused).")
    var overwrite = false
    @Option(help: "Write a checkpoint every this many iterations (0: only at the end and when stopped).")
    var checkpointEvery: Int = 1000
    @Option(help: "Checkpoints to keep (the newest).")
    var keepCheckpoints: Int = 3

    // Execution
    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).")
    var threads: Int?
    @Option(help: "Sparse autoencoder: kernels for the decoder and the backward pass: auto (sparse when few activations are nonzero), dense or sparse.")
    var kernels: KernelChoice = .auto
    @Option(help: "With --kernels auto: take the sparse kernels when at most this fraction of the batch's activations is nonzero.")
    var sparseBelow: Double = StepOptions().sparseBelow
    @Option(help: "Sparse autoencoder: overlap the allreduce of the decoder's gradient with the encoder's backward pass: auto (when the ranks span several nodes and each has a core to spare), always or never.")
    var overlap: OverlapMode = .auto
    @Option(help: "Sparse autoencoder: how ranks sum the gradient and apply Adam: auto (shared memory when every node has the same number of ranks, 2 or more, unless --deterministic or --overlap always), allreduce (MPI, every rank updates all weights) or shared-memory (a node's ranks share the weights; each sums its part, across nodes too, and updates it).")
    var gradientSum: GradientSumMode = .auto
    @Flag(help: "Sparse autoencoder: the same bits on 1, 2 and 4 ranks (fixed chunks of the batch, single-threaded products, sums in a fixed order); see docs/performance.md for its cost.")
    var deterministic = false
    @OptionGroup var job: JobOptions
    @Flag(help: "Print nothing but errors.")
    var quiet = false
    @Option(help: "The live progress line: auto (on a terminal, not under mpirun), always or never.")
    var progress: ProgressLine.Mode = .auto

    // Test hooks, hidden from --help.
    @Option(help: .hidden) var debugPerturbRank: Int?
    @Flag(help: .hidden) var debugRankChecksums = false
    @Option(help: .hidden) var debugSignalRank: Int?
    @Option(help: .hidden) var debugSignalAt: Int?

    func validate() throws {
        if resume != nil, initDirectory != nil { throw ValidationError("--init and --resume exclude each other") }
        try validating(Self.self) {
            try plan().validate()
            // A new run's settings are known now; a resumed run's once its checkpoint is read.
            _ = try plan().newRunSettings()
        }
    }

    /// The flags as a plan for the engine.
    func plan() -> RunPlan {
        var plan = RunPlan()
        plan.model = model
        plan.overrides = trajectory.overrides
        plan.data = data.plan
        plan.data.evalData = evalData
        plan.start = resume.map(StartPoint.resume) ?? initDirectory.map(StartPoint.weights) ?? .fresh
        plan.checkpoints = CheckpointPolicy(every: checkpointEvery, keep: keepCheckpoints)
        plan.output.directory = out
        plan.output.tensorboard = tensorboard
        plan.output.trace = trace
        plan.output.overwrite = overwrite
        plan.output.quiet = quiet
        plan.output.progress = progress
        plan.output.commandLine = CommandLine.arguments
        plan.execution.threadsPerRank = threads
        plan.execution.stepOptions = StepOptions(kernels: kernels, sparseBelow: sparseBelow, deterministic: deterministic)
        plan.execution.overlap = overlap
        plan.execution.gradientSum = gradientSum
        plan.execution.peerTimeout = job.peerTimeout
        plan.testHooks.perturbRank = debugPerturbRank
        plan.testHooks.rankChecksums = debugRankChecksums
        plan.testHooks.signalRank = debugSignalRank
        plan.testHooks.signalAt = debugSignalAt
        return plan
    }

    func run(comm: Communicator) throws {
        try TrainingRun(plan: plan(), comm: comm).run()
    }
}

/// The flags that decide a run's trajectory; optional so that --resume can tell given flags
/// from defaults, which depend on the model (`ModelDefinition.defaults`).
struct TrajectoryFlags: ParsableArguments {
    @Option(name: .customLong("lambda"), help: "λ, weight of the L1 sparsity term (default 0; sparse coding 1).")
    var lambda: Double?
    @Option(help: "ε, weight of the entropy term (default 0.01·λ).")
    var eps: Double?
    @Option(help: "η, weight of ‖W‖² (default λ; sparse coding 0.01).")
    var eta: Double?
    @Option(help: "δ, floor on a unit's batch-mean activation in the entropy term (default 1e-6).")
    var entropyFloor: Double?
    @Option(help: "Hidden units h, atoms or directions (default 400; tied linear 64; or the --init weights' h).")
    var hidden: Int?
    @Option(help: "Adam learning rate (default 1e-4; tied linear 1e-3).")
    var lr: Double?
    @Option(help: "Adam β1 (default 0.9).") var beta1: Double?
    @Option(help: "Adam β2 (default 0.999).") var beta2: Double?
    @Option(help: "Adam ε (default 1e-8).") var adamEps: Double?
    @Option(help: "Examples per step, the global batch whatever the number of ranks (default 100).")
    var batchSize: Int?
    @Option(help: "Seed of the initial weights, the batch sampler and synthetic data (default 0).")
    var seed: UInt64?
    @Option(help: "Iterations, numbered 0 ..< this (default 10001; sparse coding: alternations, 30; tied linear 5001).")
    var iterations: Int?
    @Option(help: "Print the table and write metrics every this many iterations, and at the last (default 1000; sparse coding 1).")
    var logEvery: Int?
    @Option(help: "Sparse coding: FISTA steps per source update (default 100).")
    var fistaSteps: Int?
    @Option(help: "Sparse coding: source update, fista (exact L1) or relaxed (the sheet's closed form as a line-search end point).")
    var sourceUpdate: SparseCodingSettings.SourceUpdate?
    @Option(help: "Hold out this fraction of the examples (seed-chosen, never trained on) and evaluate on them at every log line, in (0, 0.5].")
    var evalFraction: Double?
    @Option(help: "What the model sees of an example x: sheet (default: x − the per-dimension mean, divided by the std of all centred entries), none (x), center (x − the mean) or unit-norm (x·√D/‖x‖, each example on its own, as in Gao et al.). Statistics of the training examples; recorded and applied by eval, encode, export, --init and --resume.")
    var normalize: Normalization.Kind?
    @Option(help: "Sparse autoencoder: keep every decoder atom (a row of W) at unit norm: unit (the gradient's component along each row removed before Adam, the rows renormalized after it; W starts with unit rows) or none (default none for relu).")
    var decoderNorm: ArchitectureSettings.DecoderNorm?
    @Option(help: "Sparse autoencoder: the learning rate rises linearly from 0 over the first N iterations (default 0: constant).")
    var lrWarmup: Int?
    @Option(help: "Sparse autoencoder: the learning rate falls linearly to 0 over the last fraction F of the iterations, F in [0, 1] (default 0: no decay; of --iterations as the run is now, also when resumed).")
    var lrDecay: Double?
    @Option(help: "Sparse autoencoder: λ rises linearly from 0 over the first N iterations (default 0: constant).")
    var lambdaWarmup: Int?
    @Option(help: "Sparse autoencoder: the dense matrix products in fp32 (default) or bf16 (inputs rounded to bfloat16, sums in fp32; weights, gradients and Adam stay fp32; needs AVX512_BF16). A resume keeps the run's precision unless given.")
    var precision: Precision?
    @OptionGroup var architecture: ArchitectureFlags

    var overrides: SettingOverrides {
        var o = SettingOverrides()
        o.hidden = hidden; o.lambda = lambda; o.epsilon = eps; o.eta = eta; o.entropyFloor = entropyFloor
        o.learningRate = lr; o.beta1 = beta1; o.beta2 = beta2; o.adamEpsilon = adamEps
        o.batchSize = batchSize; o.seed = seed; o.iterations = iterations; o.logEvery = logEvery
        o.fistaSteps = fistaSteps; o.sourceUpdate = sourceUpdate; o.evalFraction = evalFraction
        o.normalize = normalize
        o.decoderNorm = decoderNorm; o.lrWarmup = lrWarmup; o.lrDecay = lrDecay; o.lambdaWarmup = lambdaWarmup
        o.precision = precision
        architecture.apply(to: &o)
        return o
    }
}

/// The sparse autoencoder's architecture (docs/models.md); optional for the same reason.
struct ArchitectureFlags: ParsableArguments {
    @Option(help: "Sparse autoencoder: relu (the sheet's model, default), topk, batchtopk or jumprelu.")
    var activation: ArchitectureSettings.Activation?
    @Option(help: "topk, batchtopk: active units per example (default 32).")
    var k: Int?
    @Option(help: "jumprelu: the thresholds' initial value (default 0.001).")
    var thresholdInit: Double?
    @Option(help: "jumprelu: the bandwidth of the thresholds' straight-through gradient (default 0.001).")
    var bandwidth: Double?
    @Option(help: "topk, batchtopk: k_aux, the dead latents AuxK reconstructs the residual with, per example (default min(256, h/2); 0: no AuxK).")
    var auxK: Int?
    @Option(help: "topk, batchtopk: the weight of AuxK in the loss (default 1/32).")
    var auxCoef: Double?
    @Option(help: "topk, batchtopk, jumprelu: a latent that has not fired over the global batch for this many steps is dead (AuxK and the dead count; default 1000). relu: count dead units over the last N steps (default: since the previous log line, as the sheet's table).")
    var deadSteps: Int?

    func apply(to o: inout SettingOverrides) {
        o.activation = activation; o.k = k; o.thresholdInit = thresholdInit; o.bandwidth = bandwidth
        o.auxK = auxK; o.auxCoef = auxCoef; o.deadSteps = deadSteps
    }
}

/// Where the examples come from.
struct DataFlags: ParsableArguments {
    @Option(help: "Training data: a .npy file (N×D, or N×H×W images; float32/64/16 or uint8), FILE.safetensors or FILE.safetensors:NAME (one N×D tensor, F32/F16/BF16), an LFW JPEG tree, synthetic:N,H,W or embedded (the default: the embedded LFW faces).")
    var data: String?
    @Option(help: "Image shape HxW of N×D data (H·W = D), for the image outputs; without it N×D data are plain vectors.")
    var imageShape: String?
    @Option(help: "For an LFW JPEG tree: scale of the 125x94 face crop (default 0.5; 0.3 gives 37x28).")
    var lfwResize: Double?
    @Option(help: "For an LFW JPEG tree: keep only people with at least this many images (default 0).")
    var minFacesPerPerson: Int?

    var plan: DataPlan {
        let lfw = lfwResize == nil && minFacesPerPerson == nil
            ? nil : LFWSettings(resize: lfwResize ?? 0.5, minFacesPerPerson: minFacesPerPerson ?? 0)
        return DataPlan(argument: data, lfw: lfw, imageShape: imageShape)
    }
}

extension ModelKind: ExpressibleByArgument {}
extension ArchitectureSettings.Activation: ExpressibleByArgument {}
extension Normalization.Kind: ExpressibleByArgument {}
extension ArchitectureSettings.DecoderNorm: ExpressibleByArgument {}
extension KernelChoice: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension OverlapMode: ExpressibleByArgument {}
extension GradientSumMode: ExpressibleByArgument {}
extension ProgressLine.Mode: ExpressibleByArgument {}
extension SparseCodingSettings.SourceUpdate: ExpressibleByArgument {}
