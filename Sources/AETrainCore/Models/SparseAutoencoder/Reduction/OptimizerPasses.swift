/// Adam's pass over θ and the unit-norm rows (`UnitNormDecoder`), shared by a rank's threads
/// (`ParallelLoop`): Adam element by element in 64-byte aligned parts, the rows whole, so the
/// bits are the same on any number of threads. Made once by the reduction that applies them.
final class OptimizerPasses<T: BLASScalar>: WorkerJob {
    enum Pass { case none, adam(Adam.Coefficients<T>), project, normalize }
    let store: ParameterStore<T>
    let loop: ParallelLoop
    private var pass = Pass.none

    /// Parameters from which the passes take the loop's threads. Below it (the sheet's model
    /// has 0.8 M) one thread's pass is a fraction of a millisecond, and a woken helper thread
    /// would spin for its 5 ms beside the next step's threaded products.
    static var parallelFrom: Int { 1 << 22 }

    init(store: ParameterStore<T>, loop: ParallelLoop) {
        self.store = store
        self.loop = store.layout.count >= Self.parallelFrom ? loop : .serial
    }

    /// One Adam step over all of θ with the summed gradient; Adam's t is one more.
    func adam(_ settings: AdamSettings) {
        guard loop.count > 1 else { Adam.step(store, settings: settings); return }
        store.adamSteps += 1
        run(.adam(Adam.Coefficients(t: store.adamSteps, settings: settings)))
    }

    /// dW's rows projected onto the tangent spaces of W's.
    func project() { run(.project) }

    /// W's rows scaled to unit norm.
    func normalize() { run(.normalize) }

    private func run(_ pass: Pass) {
        self.pass = pass
        loop.run(self)
        self.pass = .none
    }

    @_specialize(where T == Float)
    func work(_ w: Int) {
        let s = store, (h, d) = (s.layout.shape.h, s.layout.shape.d)
        switch pass {
        case .none: break
        case .adam(let c):
            let n = s.layout.count, line = 64 / MemoryLayout<T>.stride
            let lo = loop.part(of: n, worker: w).lowerBound / line * line
            let hi = w == loop.count - 1 ? n : loop.part(of: n, worker: w + 1).lowerBound / line * line
            T.adamKernel(s.params + lo, s.moment1 + lo, s.moment2 + lo, s.grads + lo, hi - lo, c.b1, c.b2, c.stepSize, c.invSqrtBC2, c.eps)
        case .project:
            UnitNormDecoder.project(dW: s.dW, W: s.W, rows: loop.part(of: h, worker: w), d: d)
        case .normalize:
            UnitNormDecoder.normalize(W: s.W, rows: loop.part(of: h, worker: w), d: d)
        }
    }
}
