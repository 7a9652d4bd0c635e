import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Bench: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the training step against the GEMM floor (its five matrix products alone).",
        discussion: """
            Defaults are the sheet's real size: 13,233 synthetic examples of 37x28 = 1036 pixels, h = 400, batch 100. \
            The floor is the step's five products for the whole batch in one process with all of this node's cores, \
            measured in the same run (under mpirun by rank 0 while the other ranks sleep). --sweep adds batches \
            400 and 1600 and h = 1600. Also printed: each rank's peak RSS and the seconds from process start to the \
            first step.
            """)

    @Option(help: "Time on this data instead (a .npy file, an LFW tree, synthetic:N,H,W or 'embedded'); --examples and --image-shape then do not apply.")
    var data: String?
    @Option(name: .customLong("init"), help: "Time a trained model: the V.npy, W.npy, b.npy, a.npy in this directory (sets --hidden).")
    var initDirectory: String?
    @Option(help: "Examples in the synthetic dataset.") var examples: Int = 13233
    @Option(help: "Image shape HxW.") var imageShape: String = "37x28"
    @Option(help: "Hidden units h.") var hidden: Int = 400
    @Option(help: "Global batch size.") var batchSize: Int = 100
    @Option(name: .customLong("lambda"), help: "λ (the sheet's sparse model: 1).") var lambda: Double = 0
    @Option(help: "Timed steps.") var steps: Int = 300
    @Option(help: "Untimed steps first.") var warmup: Int = 30
    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).") var threads: Int?
    @Flag(help: "Batches 100, 400, 1600 × h 400, 1600 (ignores --batch-size and --hidden).") var sweep = false
    @Flag(help: "Print JSON instead of text.") var json = false
    @Flag(help: "Time the dense and the sparse kernels at activation densities from 0.5% to 40% (the bias set per unit to reach each), to show the crossover.")
    var sparsity = false
    @Option(parsing: .upToNextOption, help: "With --sparsity: the densities to time (default 0.005 0.01 0.02 0.05 0.1 0.2 0.4).")
    var densities: [Double] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    @Option(help: "Kernels for the step: auto, dense or sparse.") var kernels: KernelChoice = .auto
    @Option(help: "Overlap the decoder's allreduce with the encoder's backward pass: auto (across nodes with a core to spare), always or never.")
    var overlap: OverlapMode = .auto
    @Option(help: "How ranks sum the gradient and apply Adam: auto (shared memory when every node has the same number of ranks, 2 or more, unless --deterministic or --overlap always), allreduce or shared-memory (see train --gradient-sum).")
    var gradientSum: GradientSumMode = .auto
    @Flag(help: "Time the deterministic step (the same bits on 1, 2 and 4 ranks; see train --deterministic).")
    var deterministic = false
    @Flag(help: "Time MPI allreduce of 1 KB to 16 MB: latency α (the smallest message) and ms per MB β (slope over 64 KB to 4 MB), for the scaling model.")
    var allreduce = false
    @Option(help: "Write the timed steps' timeline, every rank's spans, to this file as Chrome trace-event JSON (opens in Perfetto or chrome://tracing).")
    var trace: String?
    @Option(help: "The sparse autoencoder's activation: relu (the sheet's, default), topk, batchtopk or jumprelu (see train).")
    var activation: ArchitectureSettings.Activation = .relu
    @Option(help: "topk, batchtopk: active units per example.") var k: Int = 32
    @Option(help: "topk, batchtopk: k_aux (default min(256, h/2); 0: no AuxK). AuxK runs once latents are dead.") var auxK: Int?
    @Option(help: "topk, batchtopk, jumprelu: steps without firing before a latent is dead.") var deadSteps: Int = 1000
    @Option(help: "The step's dense products: fp32 (OpenBLAS sgemm, default) or bf16 (bfloat16 inputs, fp32 sums; needs AVX512_BF16). The GEMM floor stays fp32.")
    var precision: Precision = .fp32
    @OptionGroup var job: JobOptions

    /// The architecture timed (nil: relu), checked as train checks it.
    var architecture: ArchitectureSettings? {
        guard activation != .relu else { return nil }
        var a = ArchitectureSettings(activation: activation)
        a.k = k; a.auxK = auxK; a.deadSteps = deadSteps
        return a
    }

    func validate() throws {
        if activation != .jumprelu, activation != .relu, lambda != 0 {
            throw ValidationError("--lambda does not apply to --activation \(activation.rawValue)")
        }
        if let a = architecture { try validating(Self.self) { try a.check(hidden: hidden) } }
        guard ImageShape(parsing: imageShape) != nil else { throw ValidationError("--image-shape must be HxW, got '\(imageShape)'") }
        for (v, flag) in [(examples, "--examples"), (hidden, "--hidden"), (batchSize, "--batch-size"), (steps, "--steps")] where v <= 0 {
            throw ValidationError("\(flag) must be positive, got \(v)")
        }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, got \(warmup)") }
        if initDirectory != nil, sweep || sparsity || allreduce {
            throw ValidationError("--init times one trained model; it does not combine with --sweep, --sparsity or --allreduce")
        }
        if densities.isEmpty || !densities.allSatisfy({ $0 > 0 && $0 <= 1 }) {
            throw ValidationError("--densities must be fractions in (0, 1], got \(densities)")
        }
        if trace != nil, sparsity || allreduce { throw ValidationError("--trace records the step benchmark; it does not combine with --sparsity or --allreduce") }
        if trace?.isEmpty == true { throw ValidationError("--trace is empty; give a file") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
        if precision != .fp32, sparsity || allreduce {
            throw ValidationError("--precision sets the step's products; it does not combine with --sparsity or --allreduce")
        }
        if deterministic, overlap == .always { throw ValidationError("--overlap always does not combine with --deterministic") }
        try validating(Self.self) { try gradientSum.check(deterministic: deterministic, overlapAlways: overlap == .always) }
    }

    func run(comm: Communicator) throws {
        var plan = BenchPlan()
        plan.kind = allreduce ? .allreduce : sparsity ? .sparsity(densities: densities) : .step
        if let data {
            plan.data = try DataSource(argument: data, seed: 0)
        } else if let shape = ImageShape(parsing: imageShape) {
            plan.data = .synthetic(SyntheticSpec(examples: examples, shape: shape), seed: 0)
        }
        plan.initDirectory = initDirectory
        plan.hidden = hidden
        plan.batchSize = batchSize
        plan.lambda = lambda
        plan.architecture = architecture
        plan.precision = precision
        plan.steps = steps
        plan.warmup = warmup
        plan.threads = threads
        plan.sweep = sweep
        plan.kernels = kernels
        plan.overlap = overlap
        plan.gradientSum = gradientSum
        plan.trace = trace
        plan.deterministic = deterministic
        guard let report = try Benchmark.run(plan, comm: comm) else { return }  // ranks > 0
        if json {
            print(try report.json())
        } else {
            for line in report.text() { print(line) }
        }
    }
}
