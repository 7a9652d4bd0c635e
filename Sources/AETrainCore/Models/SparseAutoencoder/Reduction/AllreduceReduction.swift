/// The column sums and then the whole gradient (with the reduced terms after it) summed by
/// one MPI_Allreduce each; every rank then applies Adam to all of θ. One process: the sums
/// are its own.
final class AllreduceReduction<T: BLASScalar>: WholeStoreReduction {
    let store: ParameterStore<T>
    let comm: Communicator
    let eta: T
    let clock: StepClock
    let unitNormDecoder: Bool
    let optimizer: OptimizerPasses<T>

    init(store: ParameterStore<T>, comm: Communicator, eta: T, clock: StepClock, unitNormDecoder: Bool = false,
         loop: ParallelLoop = .serial) {
        self.store = store; self.comm = comm; self.eta = eta; self.clock = clock; self.unitNormDecoder = unitNormDecoder
        optimizer = OptimizerPasses(store: store, loop: loop)
    }

    func sumColumnSums(_ sums: UnsafeMutablePointer<T>, count: Int) throws {
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSum(sums, count: count) }
    }

    func sumCounts(_ counts: UnsafeMutablePointer<Double>, count: Int) throws {
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSum(counts, count: count) }
    }

    func sumGradient() throws {
        let s = store
        try clock.communicate(.gradientAllreduce) { try comm.allreduceSum(s.grads, count: s.reducedCount) }
    }
}
