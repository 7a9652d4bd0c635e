/// The execution options as every rank settled them, once per run, by `ExecutionOptions.resolve`:
/// what `train` and `bench` build the step with. None of it changes the maths.
public struct ResolvedExecution: Equatable, Sendable {
    /// The sparse autoencoder's step: the kernels as asked, and the final threads, overlap,
    /// shared memory and determinism (`StepOptions`).
    public var stepOptions: StepOptions

    public init(stepOptions: StepOptions = StepOptions()) { self.stepOptions = stepOptions }
}

extension ExecutionOptions {
    /// The one place the flags become a step: threads per rank; `--deterministic` (or a resumed
    /// run's recorded choice); shared memory (`GradientSumMode.resolve`), decided before
    /// overlap's `auto`, so that only `--overlap always` keeps the allreduce; overlap
    /// (`OverlapMode.resolve`), never with shared memory or the deterministic step.
    /// Collective: every rank, whatever the model.
    /// - resumedDeterministic: the run being resumed was started with `--deterministic`; it
    ///   stays deterministic, flag or not.
    public func resolve(comm: Communicator, resumedDeterministic: Bool = false) throws -> ResolvedExecution {
        let overlapWanted = try overlap.resolve(comm)
        let deterministic = stepOptions.deterministic || resumedDeterministic
        let sharedMemory = try gradientSum.resolve(comm, deterministic: deterministic,
                                                   overlap: !deterministic && overlap == .always)
        var options = stepOptions
        options.threads = threadsPerRank ?? Cores.perRank(comm)
        options.deterministic = deterministic
        options.sharedMemory = sharedMemory
        options.overlap = overlapWanted && !sharedMemory && !deterministic
        return ResolvedExecution(stepOptions: options)
    }
}
