import Foundation

/// One logged iteration, as written to metrics.jsonl. Each model fills what it measures;
/// what it does not measure is absent from the file (nil), never a placeholder.
public struct LogRecord: Codable, Equatable, Sendable {
    public var iteration: Int
    /// Reconstruction error, mean over the examples of ‖x − x̂‖².
    public var rec: Double
    /// The sparse autoencoder's and sparse coding's L1 term, the autoencoder's entropy term, ‖W‖².
    public var spa: Double?, ent: Double?, reg: Double?
    /// The objective the model minimizes.
    public var loss: Double
    /// Wall-clock seconds since training started (this session of the run).
    public var seconds: Double = 0
    /// Seconds from this process's start (rank 0's) to the session's first iteration: start-up,
    /// MPI, data and model. Only in the session's first logged line.
    public var secondsToFirstStep: Double?
    /// Mean number of active units per example.
    public var l0: Double?
    /// Units active in no batch since the previous logged iteration (this one included); with
    /// topk, batchtopk and jumprelu, and relu given ⟨dead-steps⟩, latents that fired in none of
    /// the last ⟨dead-steps⟩ steps.
    public var deadUnits: Int?
    /// topk, batchtopk: the auxiliary loss on the dead latents (not weighted by its coefficient).
    public var auxK: Double?
    /// topk, batchtopk, jumprelu: latents that have not fired on any training batch of the run.
    public var neverFiredUnits: Int?
    /// 1 − SSE/SST of the reconstruction, SST = Σ‖x_i − x̄‖² about the mean of the rows
    /// evaluated (`BatchSquares`).
    public var explainedVariance: Double?
    /// 1 − SSE/Σ‖x_i‖², the fraction of the squared norm explained: only where the data are
    /// not centred (normalizations none and unit-norm), where it differs from the above.
    public var explainedSquaredNorm: Double?
    /// The learning rate and λ of this iteration, where a schedule changes them.
    public var learningRate: Double?, lambda: Double?
    /// Seconds in local compute, in communication and in the optimizer since the previous
    /// logged iteration (this rank's; rank 0 logs).
    public var computeSeconds: Double?, communicationSeconds: Double?, optimizerSeconds: Double?
    /// Fraction of this rank's steps since the previous logged iteration that ran on the
    /// sparse kernels (the sparse autoencoder).
    public var sparseStepFraction: Double?
    /// The same measures over the held-out examples (`--eval-fraction`), all of them, under the
    /// parameters after this iteration's update.
    public var evalRec: Double?, evalL0: Double?, evalDeadUnits: Int?, evalExplainedVariance: Double?
    public var evalExplainedSquaredNorm: Double?

    public init(iteration: Int, rec: Double, loss: Double) {
        self.iteration = iteration; self.rec = rec; self.loss = loss
    }

    /// The first logged term that is not finite, by name, if any.
    /// Checked every iteration: no collection is built (the training step allocates nothing).
    public var firstNonFinite: (name: String, value: Double)? {
        if !rec.isFinite { return ("rec", rec) }
        if let v = spa, !v.isFinite { return ("spa", v) }
        if let v = ent, !v.isFinite { return ("ent", v) }
        if let v = reg, !v.isFinite { return ("reg", v) }
        if let v = auxK, !v.isFinite { return ("auxk", v) }
        if !loss.isFinite { return ("loss", loss) }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case iteration, rec, spa, ent, reg, loss, seconds, l0
        case secondsToFirstStep = "seconds_to_first_step"
        case deadUnits = "dead_units", explainedVariance = "explained_variance"
        case auxK = "auxk", neverFiredUnits = "never_fired_units"
        case computeSeconds = "compute_seconds", communicationSeconds = "communication_seconds"
        case optimizerSeconds = "optimizer_seconds"
        case sparseStepFraction = "sparse_step_fraction"
        case evalRec = "eval_rec", evalL0 = "eval_l0", evalDeadUnits = "eval_dead_units"
        case evalExplainedVariance = "eval_explained_variance"
        case explainedSquaredNorm = "explained_squared_norm", evalExplainedSquaredNorm = "eval_explained_squared_norm"
        case learningRate = "lr", lambda
    }
}

/// A column of the log table. Models list the ones they measure; `LogTable` prints them.
public enum LogColumn: String, CaseIterable, Sendable {
    // Left of the bar, the sheet's `%8.2f` columns.
    case rec, spa, ent, reg, auxk, loss
    // Right of the bar, aetrain's own: esn only where the data are not centred, lr and λ
    // where a schedule changes them.
    case l0, dead, neverFired, ev, esn, comp, comm, opt, lr, lambda
    // Right of a second bar, the held-out examples'.
    case evalRec, evalL0, evalDead, evalEV, evalESN

    /// The held-out columns a model with these columns gets.
    static func heldOut(after columns: [LogColumn]) -> [LogColumn] {
        [.evalRec] + (columns.contains(.l0) ? [.evalL0] : []) + (columns.contains(.dead) ? [.evalDead] : []) + [.evalEV]
            + (columns.contains(.esn) ? [.evalESN] : [])
    }
    var isHeldOut: Bool { [.evalRec, .evalL0, .evalDead, .evalEV, .evalESN].contains(self) }

    var isSheetColumn: Bool { [.rec, .spa, .ent, .reg, .auxk, .loss].contains(self) }
    var isTiming: Bool { [.comp, .comm, .opt].contains(self) }
    var title: String {
        switch self {
        case .auxk: "AuxK"
        case .neverFired: "never"
        case .l0: "L0"
        case .ev: "EV"
        case .evalRec: "e.rec"
        case .evalL0: "e.L0"
        case .evalDead: "e.dead"
        case .evalEV: "e.EV"
        case .esn: "ESN"
        case .evalESN: "e.ESN"
        case .lambda: "λ"
        default: rawValue
        }
    }
}
