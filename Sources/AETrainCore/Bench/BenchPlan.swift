import Foundation

/// What `aetrain bench` times: a plain value, built from the flags and run by `Benchmark`.
public struct BenchPlan: Equatable, Sendable {
    /// Which benchmark.
    public enum Kind: Equatable, Sendable {
        /// The training step against the GEMM floor, at one shape or the sweep.
        case step
        /// The dense and the sparse kernels at these fractions of nonzero activations.
        case sparsity(densities: [Double])
        /// MPI allreduce of 1 KB to 16 MB, with a fit of latency and bandwidth.
        case allreduce
    }

    public var kind: Kind = .step
    /// The data timed on (a synthetic set of the sheet's size by default).
    public var data: DataSource = .synthetic(SyntheticSpec(examples: 13233, shape: ImageShape(height: 37, width: 28)), seed: 0)
    /// A trained model's directory (V.npy, W.npy, b.npy, a.npy), timed instead of a fresh
    /// one; its h replaces `hidden`. Only with `.step` and no sweep.
    public var initDirectory: String?
    public var hidden = 400
    public var batchSize = 100
    public var lambda = 0.0
    /// topk, batchtopk or jumprelu (nil: relu, the sheet's).
    public var architecture: ArchitectureSettings?
    /// Timed steps (in 10 blocks) and untimed steps before them.
    public var steps = 300
    public var warmup = 30
    /// BLAS threads per rank; nil: this node's cores shared among its ranks.
    public var threads: Int?
    /// Batches 100, 400, 1600 × h 400, 1600 instead of `batchSize` × `hidden`.
    public var sweep = false
    public var kernels: KernelChoice = .auto
    public var overlap: OverlapMode = .auto
    public var gradientSum: GradientSumMode = .auto
    /// A Chrome trace-event file of the timed steps, every rank's (`TraceRecorder`); nil: none.
    public var trace: String?
    /// The deterministic step (`StepOptions.deterministic`).
    public var deterministic = false
    /// The step's dense products (`--precision`); the floor stays fp32 (OpenBLAS sgemm).
    public var precision: Precision = .fp32

    public init() {}

    /// Steps per timed block: `steps` runs as 10 blocks of this many.
    public var stepsPerBlock: Int { max(1, steps / BlockTiming.blocks) }

    /// The (batch, h) shapes `.step` times.
    func stepShapes(initialHidden: Int?) -> [(batch: Int, hidden: Int)] {
        sweep ? [(100, 400), (400, 400), (1600, 400), (100, 1600), (400, 1600), (1600, 1600)]
              : [(batchSize, initialHidden ?? hidden)]
    }

    /// The training settings of one timed model: `warmup + steps` iterations of the sheet's
    /// objective at λ.
    func settings(batch: Int, hidden h: Int) -> TrainSettings {
        var settings = TrainSettings()
        settings.hidden = h
        settings.batchSize = batch
        settings.objective = architecture == nil ? ObjectiveSettings(lambda: lambda) : ObjectiveSettings(lambda: lambda, epsilon: 0, eta: 0)
        settings.architecture = architecture
        settings.precision = precision == .fp32 ? nil : precision
        settings.iterations = warmup + steps
        return settings
    }
}
