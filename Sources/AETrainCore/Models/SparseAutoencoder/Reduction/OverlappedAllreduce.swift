/// The allreduce, split along the same flat buffer so that communication overlaps the
/// encoder's backward: dW's allreduce starts (non-blocking) as soon as the decoder's backward
/// has written it, and travels while the encoder's is computed, MPI moving it whenever the
/// backward pokes (`progress`); dV and the rest start after it, and the step waits for the three.
final class OverlappedAllreduce<T: BLASScalar>: WholeStoreReduction {
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

    func decoderGradientComplete() throws {
        let s = store
        try clock.communicate(.startAllreduce) { try comm.startAllreduceSum(s.dW, count: s.layout.W.count) }
    }

    func progress() {
        clock.communicate(.progress) { comm.progressReductions() }
    }

    func sumGradient() throws {
        let s = store
        try clock.communicate(.finishAllreduces) {
            let rest = s.layout.b.lowerBound
            try comm.startAllreduceSum(s.dV, count: s.layout.V.count)
            try comm.startAllreduceSum(s.grads + rest, count: s.reducedCount - rest)
            try comm.finishReductions()
        }
    }
}
