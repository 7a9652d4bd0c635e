import Dispatch

/// One data-parallel evaluation of the objective and its gradient on a global batch of m
/// examples, of which this rank holds mr rows. After it returns, every rank holds the same
/// full gradient in `store.grads`.
///
///  1. encoder forward on the local rows → Z and its h column sums
///  2. allreduce the column sums (h values): μ is a global-batch mean
///  3. entropy term and its per-unit gradient from μ, the same on every rank
///  4. decoder forward, residual, local partial sums of ‖R‖² and Σ Z
///  5. decoder backward (dW, da)
///  6. encoder backward (dV, db)
///  7. one fused allreduce: dV, dW, db, da and the partial sums
///  8. add the regularizer 2ηW to dW and compute reg, once, after the reduction
///
/// With `overlap`, step 7 is split along the same flat buffer: the allreduce of dW starts
/// (non-blocking) right after step 5 and travels during step 6; dV and the rest (db, da, the
/// partial sums) start after step 6, and the step waits for the three.
///
/// Steps 4–6 take the dense or the sparse kernels (`KernelChoice`): a sparse model's Z is
/// mostly zero, and the sparse kernels touch only its nonzeros.
///
/// Buffers are sized once for mr ≤ m; nothing is allocated per call.
///
/// Wall-clock time is split into local compute and exposed communication (time spent inside
/// MPI calls, not hidden behind compute), and a record of which units fired in any batch is
/// kept for the dead-unit count.
public final class DistributedStep<T: BLASScalar> {
    /// Nanoseconds spent since the last `takeTimings()`.
    public private(set) var computeNanoseconds: UInt64 = 0
    public private(set) var communicationNanoseconds: UInt64 = 0
    /// Calls that took the sparse kernels since the last `takeTimings()`, and all calls.
    public private(set) var sparseCalls = 0
    public private(set) var calls = 0
    public let shape: ModelShape
    public let maxRows: Int
    public let settings: ObjectiveSettings
    public let options: StepOptions
    public let store: ParameterStore<T>
    let comm: Communicator
    /// Records the step's spans (`--trace`); nil: nothing is recorded.
    public var trace: TraceRecorder?

    /// Every buffer below, in one allocation. Each view starts on a 64-byte boundary, so
    /// OpenBLAS's level-1 reductions (dot, asum) take the same path in every process and the
    /// logged terms are reproducible, not only the trajectory.
    private let scratch: Arena
    private let z: UnsafeMutablePointer<T>              // (maxRows, h)
    private let g: UnsafeMutablePointer<T>              // (maxRows, d)
    private let gz: UnsafeMutablePointer<T>             // (maxRows, h) dense path: G_Z, G_P
    private let dVt: UnsafeMutablePointer<T>            // (h, d) sparse path: dVᵀ; one element if never sparse
    private let active: ActiveUnits<T>                  // sparse path: Z's nonzeros
    private let columnSums: UnsafeMutablePointer<T>     // (h)
    private let entCoefficient: UnsafeMutablePointer<T> // (h)
    private let everActive: UnsafeMutablePointer<Bool>  // (h) fired in some batch since the last count

    public init(store: ParameterStore<T>, maxRows: Int, settings: ObjectiveSettings, comm: Communicator,
                options: StepOptions = StepOptions()) {
        self.shape = store.layout.shape
        self.maxRows = maxRows
        self.settings = settings
        self.options = options
        self.store = store
        self.comm = comm
        let (d, h) = (shape.d, shape.h)
        // The sparse path only runs with at most `capacity` nonzeros, so that is all it needs.
        let capacity: Int = switch options.kernels {
        case .dense: 0
        case .sparse: maxRows * h
        case .auto: min(maxRows * h, Int((options.sparseBelow * Double(maxRows * h)).rounded(.up)))
        }
        var size = Arena.Size()
        size.add(T.self, maxRows * h); size.add(T.self, maxRows * d); size.add(T.self, maxRows * h)
        size.add(T.self, capacity > 0 ? h * d : 1)
        size.add(T.self, h); size.add(T.self, h); size.add(Bool.self, h)
        ActiveUnits<T>.reserve(&size, maxRows: maxRows, capacity: capacity)
        scratch = Arena(size)
        z = scratch.take(T.self, maxRows * h)
        g = scratch.take(T.self, maxRows * d)
        gz = scratch.take(T.self, maxRows * h)
        dVt = scratch.take(T.self, capacity > 0 ? h * d : 1)
        columnSums = scratch.take(T.self, h)
        entCoefficient = scratch.take(T.self, h)
        everActive = scratch.take(Bool.self, h)
        active = ActiveUnits(maxRows: maxRows, capacity: capacity, arena: scratch)
    }

    /// Units that fired in none of the global batches since the last call (the same on every
    /// rank: it is read from the allreduced column sums); starts a new window.
    public func takeDeadUnitCount() -> Int {
        var dead = 0
        for j in 0..<shape.h {
            if !everActive[j] { dead += 1 }
            everActive[j] = false
        }
        return dead
    }

    /// (compute, communication) seconds and the fraction of calls on the sparse kernels since
    /// the last call; starts a new window.
    public func takeTimings() -> (compute: Double, communication: Double, sparseFraction: Double) {
        defer { computeNanoseconds = 0; communicationNanoseconds = 0; sparseCalls = 0; calls = 0 }
        return (Double(computeNanoseconds) / 1e9, Double(communicationNanoseconds) / 1e9,
                calls > 0 ? Double(sparseCalls) / Double(calls) : 0)
    }


    /// True after a call in which some rank passed `stop: true`.
    public private(set) var stopRequested = false

    /// - x: (mr, d) this rank's rows of the global batch; m: the global batch size.
    /// - stop: this rank was asked to stop (a signal); the answer is in `stopRequested`.
    public func lossAndGradient(x: UnsafePointer<T>, mr: Int, m: Int, stop: Bool = false) throws -> ObjectiveTerms {
        precondition(mr <= maxRows && m > 0)
        let (d, h) = (shape.d, shape.h)
        let s = store
        let lambda = T(settings.lambda)

        var clock = DispatchTime.now().uptimeNanoseconds
        func lap(_ counter: inout UInt64) {
            let now = DispatchTime.now().uptimeNanoseconds
            counter += now - clock
            clock = now
        }
        /// Lets the reductions in flight advance; the time it takes is exposed communication.
        func poke() {
            guard options.overlap else { return }
            lap(&computeNanoseconds)
            trace?.begin(.progress)
            comm.progressReductions()
            trace?.end()
            lap(&communicationNanoseconds)
        }

        // 1–3: forward through the encoder; μ from the whole batch.
        trace?.begin(.encoderForward)
        let activeCount = Objective.encoderForward(z: z, columnSums: columnSums, x: x, V: s.V, b: s.b, mr: mr, d: d, h: h, trace: trace)
        trace?.end()
        lap(&computeNanoseconds)
        trace?.begin(.columnSumsAllreduce)
        try comm.allreduceSum(columnSums, count: h)
        trace?.end()
        lap(&communicationNanoseconds)
        trace?.begin(.entropy)
        for j in 0..<h where columnSums[j] > 0 { everActive[j] = true }
        let ent = Objective.entropy(
            coefficient: entCoefficient, columnSums: columnSums, m: m, h: h,
            epsilon: T(settings.epsilon), floor: T(settings.entropyFloor))
        trace?.end()

        // 4–5: decoder, forward and backward, on the dense or the sparse kernels.
        trace?.begin(.decoderForward)  // with the sparse kernels' gather of Z's nonzeros
        let sparse = useSparse(activeCount: Int(activeCount), mr: mr) && active.gather(z: z, mr: mr, h: h)
        let (sse, l1): (T, T)
        if sparse {
            (sse, l1) = Objective.sparseDecoderForward(g: g, active: active, x: x, W: s.W, a: s.a, mr: mr, m: m, d: d)
            trace?.end(); trace?.begin(.decoderBackward)
            Objective.sparseDecoderBackward(dW: s.dW, da: s.da, active: active, g: g, mr: mr, d: d, h: h)
        } else {
            (sse, l1) = Objective.decoderForward(g: g, z: z, x: x, W: s.W, a: s.a, mr: mr, m: m, d: d, h: h, trace: trace)
            trace?.end(); trace?.begin(.decoderBackward)
            Objective.decoderBackward(dW: s.dW, da: s.da, g: g, z: z, mr: mr, d: d, h: h, trace: trace)
        }
        trace?.end()
        if options.overlap {
            lap(&computeNanoseconds)
            trace?.begin(.startAllreduce)
            try comm.startAllreduceSum(s.dW, count: h * d)
            trace?.end()
            lap(&communicationNanoseconds)
        }

        // 6: encoder backward (while dW is reduced, with overlap).
        trace?.begin(.encoderBackward)
        if sparse {
            Objective.sparseEncoderBackward(
                dV: s.dV, db: s.db, dVt: dVt, active: active, g: g, x: x, W: s.W,
                entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h)
        } else {
            Objective.encoderBackward(
                dV: s.dV, db: s.db, gz: gz, g: g, z: z, x: x, W: s.W,
                entCoefficient: entCoefficient, lambda: lambda, mr: mr, m: m, d: d, h: h, progress: poke, trace: trace)
        }
        s.setReduced(.squaredError, sse)
        s.setReduced(.activationSum, l1)
        s.setReduced(.activeCount, activeCount)
        s.setReduced(.squaredNorm, mr > 0 ? T.dot(mr * d, x, x) : 0)
        s.setReduced(.stopRequest, stop ? 1 : 0)
        calls += 1
        if sparse { sparseCalls += 1 }
        trace?.end()
        lap(&computeNanoseconds)

        // 7: the gradient and the partial sums, summed over ranks.
        if options.overlap {
            trace?.begin(.finishAllreduces)
            let rest = s.layout.b.lowerBound
            try comm.startAllreduceSum(s.dV, count: d * h)
            try comm.startAllreduceSum(s.grads + rest, count: s.reducedCount - rest)
            try comm.finishReductions()
        } else {
            trace?.begin(.gradientAllreduce)
            try comm.allreduceSum(s.grads, count: s.reducedCount)
        }
        trace?.end()
        lap(&communicationNanoseconds)

        // 8: the regularizer, once.
        stopRequested = s.reduced(.stopRequest) > 0
        trace?.begin(.regularizer)
        let reg = Objective.regularizer(dW: s.dW, W: s.W, eta: T(settings.eta), count: h * d)
        trace?.end()
        lap(&computeNanoseconds)
        let sst = Double(s.reduced(.squaredNorm))
        return ObjectiveTerms(
            rec: Double(s.reduced(.squaredError)) / Double(m),
            spa: Double(s.reduced(.activationSum)) / Double(m),
            ent: Double(ent), reg: Double(reg),
            l0: Double(s.reduced(.activeCount)) / Double(m),
            explainedVariance: sst > 0 ? 1 - Double(s.reduced(.squaredError)) / sst : 0)
    }

    private func useSparse(activeCount: Int, mr: Int) -> Bool {
        switch options.kernels {
        case .dense: false
        case .sparse: true
        case .auto: mr > 0 && Double(activeCount) <= options.sparseBelow * Double(mr * shape.h)
        }
    }
}
