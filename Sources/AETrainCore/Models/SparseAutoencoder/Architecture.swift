/// Which sparse autoencoder the step trains (`--activation`) and the settings that come with
/// it. A run's `TrainSettings.architecture` is nil for the sheet's model (relu, no decoder
/// norm), so that its config.json and checkpoints keep their bytes.
///
/// Notation: π = xV + b (m, h), x̂ = zW + a.
///   relu       z = relu(π)                                  (the sheet)
///   topk       z = TopK_k(relu(π)) per example, ties to the lower unit index
///   batchtopk  the k·B largest entries of relu(π) over the global batch of B examples;
///              inference z = relu(π)·1[relu(π) > θ], θ a running threshold
///   jumprelu   z = π·H(π − θ_j), θ (h) a trained parameter
public struct ArchitectureSettings: Equatable, Codable, Sendable {
    public enum Activation: String, CaseIterable, Codable, Sendable { case relu, topk, batchtopk, jumprelu }
    public enum DecoderNorm: String, CaseIterable, Codable, Sendable { case unit, none }

    public var activation: Activation = .relu
    /// Active units per example (topk), or per example over the global batch (batchtopk).
    public var k: Int = 32
    /// jumprelu: θ's initial value, and the bandwidth ε of the rectangle kernel K(u) = 1[|u| < ½].
    public var thresholdInit: Double = 0.001
    public var bandwidth: Double = 0.001
    /// AuxK (topk, batchtopk): k_aux (0: off; nil: min(256, h/2)) and its coefficient c.
    public var auxK: Int?
    public var auxCoef: Double = 1.0 / 32
    /// A latent that has not fired over the global batch for this many steps is dead.
    public var deadSteps: Int = 1000
    /// relu: units are counted dead over the last this many steps when given (`--dead-steps`);
    /// nil: over the steps since the previous log line, as the sheet's table counts them (and
    /// its runs keep their bytes). Only the count changes: relu has no AuxK.
    public var reluDeadSteps: Int?
    /// unit: every decoder atom (a row of W) is kept at unit norm.
    public var decoderNorm: DecoderNorm = .none

    public init(activation: Activation = .relu) {
        self.activation = activation
        decoderNorm = activation == .relu ? .none : .unit
    }
}

/// The learning rate's and λ's schedules; nil in `TrainSettings.schedule`: constant (the sheet).
public struct ScheduleSettings: Equatable, Codable, Sendable {
    /// The learning rate rises linearly from 0 over the first `lrWarmup` steps,
    public var lrWarmup: Int = 0
    /// and falls linearly to 0 over the last fraction `lrDecay` of the steps.
    public var lrDecay: Double = 0
    /// λ rises linearly from 0 over the first `lambdaWarmup` steps.
    public var lambdaWarmup: Int = 0
    public init() {}
}
