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
    /// 1 − SSE/Σ‖x_i‖² of the batch (about 0; the log's explained variance is about the
    /// batch's mean: `BatchSquares`).
    public var explainedVariance: Double = 0
    /// topk, batchtopk: AuxK (0 without dead latents or with ⟨aux-k⟩ 0).
    public var auxK: Double = 0

    public init(rec: Double, spa: Double, ent: Double, reg: Double, l0: Double = 0, explainedVariance: Double = 0) {
        self.rec = rec; self.spa = spa; self.ent = ent; self.reg = reg
        self.l0 = l0; self.explainedVariance = explainedVariance
    }

    public func loss(_ s: ObjectiveSettings) -> Double { rec + s.lambda * spa + s.epsilon * ent + s.eta * reg }

    /// The loss an architecture minimizes: relu's above; topk and batchtopk rec + c·AuxK + η·reg;
    /// jumprelu rec + λ·L0 + η·reg.
    public func loss(_ s: ObjectiveSettings, architecture: ArchitectureSettings?) -> Double {
        guard let a = architecture else { return loss(s) }
        switch a.activation {
        case .relu: return loss(s)
        case .topk, .batchtopk: return rec + a.auxCoef * auxK + s.eta * reg
        case .jumprelu: return rec + s.lambda * l0 + s.eta * reg
        }
    }

    /// The first term that is not finite, by name, if any.
    public var firstNonFinite: (name: String, value: Double)? {
        for (name, v) in [("rec", rec), ("spa", spa), ("ent", ent), ("reg", reg)] where !v.isFinite { return (name, v) }
        return nil
    }
}
