/// Which kernels run the decoder and the backward pass.
public enum KernelChoice: String, CaseIterable, Sendable {
    /// Per step, the same on every rank: sparse when the fraction of the whole batch's
    /// activations that are nonzero is at most `StepOptions.sparseBelow`, dense otherwise.
    case auto
    /// Always the five dense products (`Objective.swift`).
    case dense
    /// Always the active entries only (`Objective+Sparse.swift`).
    case sparse
}

/// How `DistributedStep` computes; none of it changes the maths, only the speed.
public struct StepOptions: Equatable, Sendable {
    public var kernels: KernelChoice = .auto
    /// The fraction of nonzero activations below which the sparse kernels win at the sheet's
    /// size: the crossover `aetrain bench --sparsity` shows.
    public var sparseBelow: Double = 0.08
    /// Start the allreduce of the decoder's gradient before the encoder's is computed
    /// (non-blocking); otherwise one blocking allreduce of the whole buffer at the end.
    public var overlap = false
    /// Fixed chunks, single-threaded products and fixed-order sums: the same bits on 1, 2 and
    /// 4 ranks (`BatchCut`, `DistributedStep`). No overlap.
    public var deterministic = false
    /// Deterministic: chunks computed at once, each on one thread (the rank's BLAS threads).
    public var threads = 1
    /// The ranks of a node share θ, Adam's moments and their gradients in one shared-memory
    /// segment, and each updates its own part (`ParameterStore.shared`) instead of every rank
    /// updating all of θ after an allreduce. Resolved by `ExecutionOptions.resolve`: never with
    /// `overlap` or `deterministic`.
    public var sharedMemory = false
    /// The dense products' arithmetic (`TrainSettings.precision`, set by the model).
    public var precision: Precision = .fp32
    public init(kernels: KernelChoice = .auto, sparseBelow: Double = 0.08, overlap: Bool = false,
                deterministic: Bool = false, threads: Int = 1, sharedMemory: Bool = false) {
        self.kernels = kernels; self.sparseBelow = sparseBelow; self.overlap = overlap
        self.deterministic = deterministic; self.threads = threads; self.sharedMemory = sharedMemory
    }
}

