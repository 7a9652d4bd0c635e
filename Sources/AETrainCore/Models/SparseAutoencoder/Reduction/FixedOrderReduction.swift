/// `--deterministic`'s sums: the column sums and the gradient each summed over the ranks in one
/// binary tree over the ranks in rank order (`allreduceSumInFixedOrder`), whichever rank
/// computes an element, so that the bits depend on the rank count only as the chunks' tree
/// allows: the same on 1, 2 and 4 ranks. Adam then on all of θ, on every rank. No overlap.
final class FixedOrderReduction<T: BLASScalar>: WholeStoreReduction {
    let store: ParameterStore<T>
    let comm: Communicator
    let eta: T
    let clock: StepClock
    let unitNormDecoder: Bool
    let optimizer: OptimizerPasses<T>
    /// (reducedCount) a partner's values; one element on one rank, which sends nothing.
    private let scratch: Arena
    private let partner: UnsafeMutablePointer<T>
    private let countsPartner: UnsafeMutablePointer<Double>  // (maxCounts) `sumCounts`'s partner values

    init(store: ParameterStore<T>, comm: Communicator, eta: T, clock: StepClock, unitNormDecoder: Bool = false,
         loop: ParallelLoop = .serial) {
        self.store = store; self.comm = comm; self.eta = eta; self.clock = clock; self.unitNormDecoder = unitNormDecoder
        optimizer = OptimizerPasses(store: store, loop: loop)
        let count = comm.size > 1 ? store.reducedCount : 1
        var size = Arena.Size()
        size.add(T.self, count)
        size.add(Double.self, comm.size > 1 ? maxCounts : 1)
        scratch = Arena(size)
        partner = scratch.take(T.self, count)
        countsPartner = scratch.take(Double.self, comm.size > 1 ? maxCounts : 1)
    }

    func sumColumnSums(_ sums: UnsafeMutablePointer<T>, count: Int) throws {
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSumInFixedOrder(sums, count: count, scratch: partner) }
    }

    func sumCounts(_ counts: UnsafeMutablePointer<Double>, count: Int) throws {
        precondition(count <= maxCounts)
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSumInFixedOrder(counts, count: count, scratch: countsPartner) }
    }

    func sumGradient() throws {
        let s = store
        try clock.communicate(.gradientAllreduce) {
            try comm.allreduceSumInFixedOrder(s.grads, count: s.reducedCount, scratch: partner)
        }
    }
}
