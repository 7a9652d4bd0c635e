import Dispatch

/// The weights of the objective's four terms.
public struct ObjectiveSettings: Equatable, Codable, Sendable {
    /// λ, weight of the L1 sparsity term.
    public var lambda: Double
    /// ε, weight of the "entropy" term (the sheet: 0.01·λ).
    public var epsilon: Double
    /// η, weight of ‖W‖² (the sheet: λ).
    public var eta: Double
    /// δ, floor on each unit's batch-mean activation in the entropy term, so that a unit with
    /// no activity in a batch adds 1/δ instead of ∞ (PyTorch turns that ∞ into NaN weights).
    public var entropyFloor: Double = 1e-6

    public init(lambda: Double, epsilon: Double? = nil, eta: Double? = nil, entropyFloor: Double = 1e-6) {
        self.lambda = lambda
        self.epsilon = epsilon ?? 0.01 * lambda
        self.eta = eta ?? lambda
        self.entropyFloor = entropyFloor
    }
}

/// The four terms of the objective for one global batch, as the sheet prints them, and two
/// statistics of the same batch.
public struct ObjectiveTerms: Equatable, Sendable {
    public var rec: Double, spa: Double, ent: Double, reg: Double
    /// Mean number of active units per example (‖z_i‖₀).
    public var l0: Double = 0
    /// 1 − SSE/SST of the reconstruction, SST about the (zero) mean of the standardized data.
    public var explainedVariance: Double = 0

    public init(rec: Double, spa: Double, ent: Double, reg: Double, l0: Double = 0, explainedVariance: Double = 0) {
        self.rec = rec; self.spa = spa; self.ent = ent; self.reg = reg
        self.l0 = l0; self.explainedVariance = explainedVariance
    }

    public func loss(_ s: ObjectiveSettings) -> Double { rec + s.lambda * spa + s.epsilon * ent + s.eta * reg }

    /// The first term that is not finite, by name, if any.
    public var firstNonFinite: (name: String, value: Double)? {
        for (name, v) in [("rec", rec), ("spa", spa), ("ent", ent), ("reg", reg)] where !v.isFinite { return (name, v) }
        return nil
    }
}

/// One data-parallel evaluation of the objective and its gradient on a global batch of m
/// examples, of which this rank holds mr rows. After it returns, every rank holds the same
/// full gradient in `store.grads`.
///
///  1. encoder forward on the local rows → Z and its h column sums
///  2. allreduce the column sums (h values): μ is a global-batch mean
///  3. entropy term and its per-unit gradient from μ, the same on every rank
///  4. decoder forward, residual, local partial sums of ‖R‖² and Σ Z
///  5. backward on the local rows (data terms)
///  6. one fused allreduce: dV, dW, db, da and the two partial sums
///  7. add the regularizer 2ηW to dW and compute reg, once, after the reduction
///
/// Buffers are sized once for mr ≤ m; nothing is allocated per call.
///
/// Wall-clock time is split into local compute and communication (the two allreduces), and a
/// record of which units fired in any batch is kept for the dead-unit count.
public final class DistributedStep<T: BLASScalar> {
    /// Nanoseconds spent since the last `takeTimings()`.
    public private(set) var computeNanoseconds: UInt64 = 0
    public private(set) var communicationNanoseconds: UInt64 = 0
    public let shape: ModelShape
    public let maxRows: Int
    public let settings: ObjectiveSettings
    public let store: ParameterStore<T>
    let comm: Communicator

    private let z: UnsafeMutableBufferPointer<T>             // (maxRows, h)
    private let g: UnsafeMutableBufferPointer<T>             // (maxRows, d)
    private let gz: UnsafeMutableBufferPointer<T>            // (maxRows, h)
    private let columnSums: UnsafeMutableBufferPointer<T>    // (h)
    private let entCoefficient: UnsafeMutableBufferPointer<T> // (h)
    private let everActive: UnsafeMutableBufferPointer<Bool>  // (h) fired in some batch since the last count

    public init(store: ParameterStore<T>, maxRows: Int, settings: ObjectiveSettings, comm: Communicator) {
        self.shape = store.layout.shape
        self.maxRows = maxRows
        self.settings = settings
        self.store = store
        self.comm = comm
        let (d, h) = (shape.d, shape.h)
        z = .allocate(capacity: max(1, maxRows * h)); z.initialize(repeating: 0)
        g = .allocate(capacity: max(1, maxRows * d)); g.initialize(repeating: 0)
        gz = .allocate(capacity: max(1, maxRows * h)); gz.initialize(repeating: 0)
        columnSums = .allocate(capacity: h); columnSums.initialize(repeating: 0)
        entCoefficient = .allocate(capacity: h); entCoefficient.initialize(repeating: 0)
        everActive = .allocate(capacity: h); everActive.initialize(repeating: false)
    }

    deinit {
        z.deallocate(); g.deallocate(); gz.deallocate()
        columnSums.deallocate(); entCoefficient.deallocate(); everActive.deallocate()
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

    /// (compute, communication) seconds since the last call; starts a new window.
    public func takeTimings() -> (compute: Double, communication: Double) {
        defer { computeNanoseconds = 0; communicationNanoseconds = 0 }
        return (Double(computeNanoseconds) / 1e9, Double(communicationNanoseconds) / 1e9)
    }

    /// The activations Z (mr, h) of the last call's local rows.
    public var activations: UnsafeBufferPointer<T> { UnsafeBufferPointer(z) }

    /// True after a call in which some rank passed `stop: true`.
    public private(set) var stopRequested = false

    /// - x: (mr, d) this rank's rows of the global batch; m: the global batch size.
    /// - stop: this rank was asked to stop (a signal); the answer is in `stopRequested`.
    public func lossAndGradient(x: UnsafePointer<T>, mr: Int, m: Int, stop: Bool = false) throws -> ObjectiveTerms {
        precondition(mr <= maxRows && m > 0)
        let (d, h) = (shape.d, shape.h)
        let s = store
        guard let z = z.baseAddress, let g = g.baseAddress, let gz = gz.baseAddress,
              let columnSums = columnSums.baseAddress, let entCoefficient = entCoefficient.baseAddress
        else { preconditionFailure("buffers are allocated in init") }

        var clock = DispatchTime.now().uptimeNanoseconds
        func lap(_ counter: inout UInt64) {
            let now = DispatchTime.now().uptimeNanoseconds
            counter += now - clock
            clock = now
        }

        let active = Objective.encoderForward(z: z, columnSums: columnSums, x: x, V: s.V, b: s.b, mr: mr, d: d, h: h)
        lap(&computeNanoseconds)
        try comm.allreduceSum(columnSums, count: h)
        lap(&communicationNanoseconds)
        for j in 0..<h where columnSums[j] > 0 { everActive[j] = true }
        let ent = Objective.entropy(
            coefficient: entCoefficient, columnSums: columnSums, m: m, h: h,
            epsilon: T(settings.epsilon), floor: T(settings.entropyFloor))

        let (sse, l1) = Objective.decoderForward(g: g, z: z, x: x, W: s.W, a: s.a, mr: mr, m: m, d: d, h: h)
        Objective.backward(
            dV: s.dV, dW: s.dW, db: s.db, da: s.da, gz: gz,
            g: g, z: z, x: x, W: s.W, entCoefficient: entCoefficient, lambda: T(settings.lambda),
            mr: mr, m: m, d: d, h: h)
        s.setReduced(.squaredError, sse)
        s.setReduced(.activationSum, l1)
        s.setReduced(.activeCount, active)
        s.setReduced(.squaredNorm, mr > 0 ? T.dot(mr * d, x, x) : 0)
        s.setReduced(.stopRequest, stop ? 1 : 0)
        lap(&computeNanoseconds)
        try comm.allreduceSum(s.grads, count: s.reducedCount)
        lap(&communicationNanoseconds)

        stopRequested = s.reduced(.stopRequest) > 0
        let reg = Objective.regularizer(dW: s.dW, W: s.W, eta: T(settings.eta), count: h * d)
        lap(&computeNanoseconds)
        let sst = Double(s.reduced(.squaredNorm))
        return ObjectiveTerms(
            rec: Double(s.reduced(.squaredError)) / Double(m),
            spa: Double(s.reduced(.activationSum)) / Double(m),
            ent: Double(ent), reg: Double(reg),
            l0: Double(s.reduced(.activeCount)) / Double(m),
            explainedVariance: sst > 0 ? 1 - Double(s.reduced(.squaredError)) / sst : 0)
    }
}
