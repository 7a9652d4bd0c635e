/// The ranks of each node share θ, Adam's moments and their gradients (`ParameterStore.shared`):
/// no allreduce of the whole gradient and no repeated update. Each rank writes its own
/// gradient; after a barrier it sums the node's gradients over its own 1/L of the parameters
/// (on several nodes, then sums that part across the nodes, among the ranks that own the same
/// part), adds 2ηW there and applies Adam, in one pass (`Adam.step(…summing:…)`); a second
/// barrier ends the update. For two ranks the sums are MPI's to the bit.
///
/// ‖W‖² is taken before the gradient barrier: after it, ranks update W.
///
/// With unit-norm decoder rows (`UnitNormDecoder`) the store's `owned` parts are whole rows of
/// W (`ParameterStore.shared(…rowsOf:…)`), so each rank projects and renormalizes the rows it
/// owns from their complete summed gradient, with no further barrier: over its rows of W, the
/// summed gradient (and 2ηW) is first written into this rank's own slot, which no other rank
/// reads there, projected, and then Adam reads it alone.
public final class SharedMemoryReduction<T: BLASScalar>: GradientReduction {
    let store: ParameterStore<T>
    let sharing: ParameterStore<T>.Sharing
    let comm: Communicator
    let twoEta: T
    let clock: StepClock
    let unitNormDecoder: Bool
    /// ‖W‖², taken before the gradient barrier.
    private var squaredNorm: T = 0

    /// - store: a shared store (`ParameterStore.shared` with a window); eta: the regularizer's
    ///   η, whose gradient 2ηW the update adds to the summed gradient over `layout.W`.
    /// - unitNormDecoder: W's rows kept at unit norm; `store`'s owned parts must be whole rows of W.
    public init(store: ParameterStore<T>, comm: Communicator, eta: T, clock: StepClock = StepClock(), unitNormDecoder: Bool = false) {
        guard let sharing = store.sharing else { preconditionFailure("SharedMemoryReduction needs a shared store") }
        self.store = store; self.sharing = sharing; self.comm = comm; self.twoEta = 2 * eta; self.clock = clock
        self.unitNormDecoder = unitNormDecoder
        if unitNormDecoder {
            let W = store.layout.W, d = store.layout.shape.d
            let lo = min(max(W.lowerBound, sharing.owned.lowerBound), W.upperBound)
            let hi = max(min(W.upperBound, sharing.owned.upperBound), lo)
            precondition((lo - W.lowerBound) % d == 0 && (hi - W.lowerBound) % d == 0, "a shared store's owned parts must be whole rows of W")
        }
    }

    public func beginStep() throws {
        guard store.needsSynchronize else { return }
        try clock.communicate(nil) { try sharing.segment.synchronize() }
        store.needsSynchronize = false
    }

    public func sumColumnSums(_ sums: UnsafeMutablePointer<T>, count: Int) throws {
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSum(sums, count: count) }
    }

    public func sumCounts(_ counts: UnsafeMutablePointer<Double>, count: Int) throws {
        try clock.communicate(.columnSumsAllreduce) { try comm.allreduceSum(counts, count: count) }
    }

    public func decoderGradientComplete() {}
    public func progress() {}

    public func sumGradient() throws {
        let s = store
        squaredNorm = clock.compute(.regularizer) { T.squaredNorm(s.W, count: s.layout.W.count) }
        try clock.communicate(.gradientBarrier) { try sharing.segment.synchronize() }
        // On several nodes, this rank's part summed across them.
        try clock.communicate(sharing.nodes > 1 ? .gradientAllreduce : nil) { try sumOverRanks() }
    }

    public func regularizer() -> T { squaredNorm }

    /// Done by `update`, for the rows this rank owns.
    public func projectDecoderGradient() {}

    /// After a `synchronize` that follows every rank's partial gradient: the reduced terms
    /// summed over the node's ranks (in rank order) into this rank's own copy. On one node the
    /// gradient itself is summed by `update`, over `owned`, as it updates. On several, this
    /// rank's part of the gradient is summed over the node's ranks into its own slot (no other
    /// rank reads that part of it), then it and the terms are summed across the nodes, among
    /// the ranks that own the same part (`Communicator.allreduceAcrossNodes`).
    public func sumOverRanks() throws {
        let sh = sharing, s = store
        let n = s.layout.count
        for k in 0..<s.reducedSlots {
            var total = sh.slots[n + k]
            for q in 1..<sh.ranks { total += sh.slots[q * sh.slotStride + n + k] }
            s.sums[k] = total
        }
        s.needsSynchronize = true
        guard sh.nodes > 1 else { return }
        let lo = sh.owned.lowerBound
        T.sumRows(into: s.grads + lo, from: sh.slots + lo, stride: sh.slotStride, rows: sh.ranks, count: sh.owned.count)
        try comm.allreduceAcrossNodes(s.grads + lo, count: sh.owned.count, kind: T.scalarKind)
        try comm.allreduceAcrossNodes(s.sums, count: s.reducedSlots, kind: T.scalarKind)
    }

    /// Adam over `owned` only, with the gradient summed over the ranks ((g0 + g1) + g2 …: for
    /// two ranks what MPI_Allreduce computes) and 2ηW added, in one pass; then a `synchronize`,
    /// after which every rank holds the whole new θ.
    public func update(_ settings: AdamSettings) throws {
        let s = store, sh = sharing
        s.adamSteps += 1
        clock.traced(.adam) {
            let t = s.adamSteps
            func update(_ lo: Int, _ hi: Int, twoEta: T?) {
                guard lo < hi else { return }
                // One node: the node's gradients, summed here; several: this rank's slot, summed by `sumOverRanks`.
                let (g, rows) = sh.nodes > 1 ? (s.grads + lo, 1) : (sh.slots + lo, sh.ranks)
                Adam.step(params: s.params + lo, moment1: s.moment1 + lo, moment2: s.moment2 + lo, summing: g,
                          stride: sh.slotStride, rows: rows, twoEta: twoEta, count: hi - lo, t: t, settings: settings)
            }
            let owned = sh.owned, W = s.layout.W
            let lo = min(max(W.lowerBound, owned.lowerBound), owned.upperBound)
            let hi = max(min(W.upperBound, owned.upperBound), lo)
            update(owned.lowerBound, lo, twoEta: nil)
            if unitNormDecoder, lo < hi {
                // This rank's rows of W: summed (one node) into its own slot, 2ηW added, projected; Adam; renormalized.
                let d = s.layout.shape.d, rows = (lo - W.lowerBound) / d..<(hi - W.lowerBound) / d
                if sh.nodes == 1 { T.sumRows(into: s.grads + lo, from: sh.slots + lo, stride: sh.slotStride, rows: sh.ranks, count: hi - lo) }
                _ = T.regularizer(s.grads + lo, s.params + lo, twoEta: twoEta, count: hi - lo)
                UnitNormDecoder.project(dW: s.dW, W: s.W, rows: rows, d: d)
                Adam.step(params: s.params + lo, moment1: s.moment1 + lo, moment2: s.moment2 + lo, summing: s.grads + lo,
                          stride: sh.slotStride, rows: 1, twoEta: nil, count: hi - lo, t: t, settings: settings)
                UnitNormDecoder.normalize(W: s.W, rows: rows, d: d)
            } else {
                update(lo, hi, twoEta: twoEta)
            }
            update(hi, owned.upperBound, twoEta: nil)
        }
        try clock.traced(.updateBarrier) { try sh.segment.synchronize() }
        s.needsSynchronize = false
    }
}
