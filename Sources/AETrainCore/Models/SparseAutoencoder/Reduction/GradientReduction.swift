/// How the ranks sum what each computed, and how θ is then updated: one type per mode, chosen
/// once when the step is built (`makeGradientReduction`), so that `DistributedStep` reads as
/// its outline with no mode in it:
///
///     AllreduceReduction        MPI_Allreduce of the whole gradient; Adam on all of θ
///     OverlappedAllreduce       the same, dW's allreduce started before the encoder's backward
///     SharedMemoryReduction     the node's ranks share θ; each sums and updates its own part
///     FixedOrderReduction       sums in one fixed tree order (`--deterministic`)
///
/// Each wraps its own communication in the step's `StepClock`, which times and traces it.
public protocol GradientReduction<T>: AnyObject {
    associatedtype T: BLASScalar

    /// Before the step reads θ (shared memory: set-up's writes, or a skipped update, are
    /// waited for).
    func beginStep() throws
    /// `sums` (count): the column sums of Z and the active count, summed over the ranks in place.
    func sumColumnSums(_ sums: UnsafeMutablePointer<T>, count: Int) throws
    /// `counts` (count, at most `maxCounts`): integers in float64 (exact in any order), summed over
    /// the ranks in place (batchtopk's selection).
    func sumCounts(_ counts: UnsafeMutablePointer<Double>, count: Int) throws
    /// Between the decoder's backward and the encoder's: dW is complete on this rank.
    func decoderGradientComplete() throws
    /// Between the encoder backward's products: communication in flight may advance.
    func progress()
    /// After the backward: the gradient and the reduced terms summed over the ranks (shared
    /// memory: the terms summed, and the gradient left for the update to sum).
    func sumGradient() throws
    /// After `sumGradient`: reg = ‖W‖², with its gradient 2ηW added to dW (shared memory: by
    /// the update).
    func regularizer() -> T
    /// After `regularizer`, with unit-norm decoder rows (`UnitNormDecoder`): each row of dW
    /// projected onto its row's tangent space (shared memory: by the update, for the rows
    /// this rank owns). Nothing otherwise.
    func projectDecoderGradient()
    /// Adam with the summed gradient, then, with unit-norm decoder rows, W's rows renormalized
    /// (shared memory: on this rank's part, then the wait for the others').
    func update(_ settings: AdamSettings) throws
}

/// The most counts one `sumCounts` call sums (256 bins, or one per chunk of the batch).
let maxCounts = 4096

/// What every mode but shared memory does: nothing to wait for, no hooks in the backward, the
/// regularizer after the sum, and Adam on all of θ.
protocol WholeStoreReduction: GradientReduction {
    var store: ParameterStore<T> { get }
    var clock: StepClock { get }
    var eta: T { get }
    var unitNormDecoder: Bool { get }
    /// Adam's pass and the unit-norm rows on the rank's threads.
    var optimizer: OptimizerPasses<T> { get }
}

extension WholeStoreReduction {
    public func beginStep() {}
    public func decoderGradientComplete() {}
    public func progress() {}

    /// ‖W‖², and 2ηW added to dW (η = 0: ‖W‖² alone, the same value, dW untouched).
    public func regularizer() -> T {
        let s = store
        return clock.compute(.regularizer) {
            eta == 0 ? T.squaredNorm(s.W, count: s.layout.W.count)
                     : Objective.regularizer(dW: s.dW, W: s.W, eta: eta, count: s.layout.W.count)
        }
    }

    public func projectDecoderGradient() {
        guard unitNormDecoder else { return }
        clock.compute(.regularizer) { optimizer.project() }
    }

    /// Adam over all of θ, then the unit-norm rows, on the rank's threads.
    public func update(_ settings: AdamSettings) {
        clock.traced(.adam) {
            optimizer.adam(settings)
            if unitNormDecoder { optimizer.normalize() }
        }
    }
}

/// The reduction `options` and `store` ask for: shared memory when the store is shared,
/// deterministic's fixed order, or the allreduce with or without overlap.
/// - unitNormDecoder: W's rows are kept at unit norm (a shared store's `owned` parts must then
///   be whole rows of W: `ParameterStore.shared(…rowsOf:…)`).
func makeGradientReduction<T: BLASScalar>(options: StepOptions, store: ParameterStore<T>, comm: Communicator,
                                          eta: T, clock: StepClock, unitNormDecoder: Bool = false,
                                          loop: ParallelLoop = .serial) -> any GradientReduction<T> {
    let unit = unitNormDecoder
    if store.sharing != nil { return SharedMemoryReduction(store: store, comm: comm, eta: eta, clock: clock, unitNormDecoder: unit) }
    if options.deterministic { return FixedOrderReduction(store: store, comm: comm, eta: eta, clock: clock, unitNormDecoder: unit, loop: loop) }
    if options.overlap { return OverlappedAllreduce(store: store, comm: comm, eta: eta, clock: clock, unitNormDecoder: unit, loop: loop) }
    return AllreduceReduction(store: store, comm: comm, eta: eta, clock: clock, unitNormDecoder: unit, loop: loop)
}
