/// Which settings each architecture reads, how the flags set them, and their checks.
///
///     relu               λ (L1), ε, η, δ (the sheet)
///     topk, batchtopk    k, k_aux, c, dead steps, η
///     jumprelu           θ's initial value, the bandwidth ε, λ (the L0 penalty), dead steps, η
///
/// λ, ε and η default to 0 for the three new architectures; a flag an architecture does not
/// read is a usage error.
extension ArchitectureSettings.Activation {
    /// The settings of `Setting.architectureDependent` this activation reads.
    public var settings: Set<Setting> {
        switch self {
        case .relu: [.lambda, .epsilon, .eta, .entropyFloor, .deadSteps]
        case .topk, .batchtopk: [.k, .auxK, .auxCoef, .deadSteps, .eta]
        case .jumprelu: [.thresholdInit, .bandwidth, .lambda, .deadSteps, .eta]
        }
    }
}

extension Setting {
    /// The sparse autoencoder's settings that only some activations read.
    public static let architectureDependent: Set<Setting> = [
        .lambda, .epsilon, .eta, .entropyFloor, .k, .thresholdInit, .bandwidth, .auxK, .auxCoef, .deadSteps,
    ]
    /// Every architecture setting (what the sparse autoencoder's definition lists).
    public static let architecture: Set<Setting> = [.activation, .k, .thresholdInit, .bandwidth, .auxK, .auxCoef, .deadSteps]
}

extension ArchitectureSettings {
    /// k_aux: `auxK`, or min(256, h/2) when not given; 0 for jumprelu and relu (no AuxK).
    public func resolvedAuxK(hidden h: Int) -> Int {
        guard activation == .topk || activation == .batchtopk else { return 0 }
        return min(auxK ?? min(256, h / 2), h)
    }

    /// `validate(hidden:)` for the command line (bench).
    public func check(hidden h: Int) throws { try validate(hidden: h) }

    /// Checks made before any work starts; the message names the setting.
    func validate(hidden h: Int) throws {
        if activation == .topk || activation == .batchtopk {
            guard k >= 1, k <= h else { throw UserError("\(Setting.k.marker) must be in 1 … h = \(h), got \(k)") }
            if let a = auxK, a < 0 || a > h { throw UserError("\(Setting.auxK.marker) must be in 0 … h = \(h), got \(a)") }
            guard auxCoef >= 0, auxCoef.isFinite else { throw UserError("\(Setting.auxCoef.marker) must be a finite number ≥ 0, got \(auxCoef)") }
        }
        if activation == .jumprelu {
            guard thresholdInit.isFinite else { throw UserError("\(Setting.thresholdInit.marker) must be finite, got \(thresholdInit)") }
            guard bandwidth > 0, bandwidth.isFinite else { throw UserError("\(Setting.bandwidth.marker) must be positive, got \(bandwidth)") }
        }
        for v in [deadSteps, reluDeadSteps ?? 1] where v < 1 { throw UserError("\(Setting.deadSteps.marker) must be positive, got \(v)") }
    }
}

extension TrainSettings {
    /// The activation the run trains (relu when `architecture` is nil).
    public var activation: ArchitectureSettings.Activation { architecture?.activation ?? .relu }
    /// The architecture when it is topk, batchtopk or jumprelu; nil for relu, the sheet's model,
    /// also when `architecture` only records its decoder norm.
    public var modernArchitecture: ArchitectureSettings? { activation == .relu ? nil : architecture }

    /// `--activation` and the settings that come with it, over these settings; refuses a
    /// setting the resulting activation does not read (the sparse autoencoder only: the other
    /// models refuse all of them through their definitions).
    mutating func mergeArchitecture(_ o: SettingOverrides, model: ModelKind) throws {
        guard model == .sparseAutoencoder else { return }
        if let a = o.activation, a != activation {
            architecture = a == .relu ? nil : ArchitectureSettings(activation: a)
        }
        let reads = activation.settings
        if let extra = o.given.first(where: { Setting.architectureDependent.contains($0) && !reads.contains($0) }) {
            throw UserError("\(extra.marker) does not apply to \(Setting.activation.marker) \(activation.rawValue)")
        }
        if activation == .relu, let v = o.deadSteps {
            var a = architecture ?? ArchitectureSettings()
            a.reluDeadSteps = v
            architecture = a
            return
        }
        guard var a = architecture else { return }
        if let v = o.k { a.k = v }
        if let v = o.thresholdInit { a.thresholdInit = v }
        if let v = o.bandwidth { a.bandwidth = v }
        if let v = o.auxK { a.auxK = v }
        if let v = o.auxCoef { a.auxCoef = v }
        if let v = o.deadSteps { a.deadSteps = v }
        architecture = a
    }

    /// `trajectoryDifference`'s pairs for the architecture.
    func architectureDifferences(from other: TrainSettings) -> [(Setting, String, String)] {
        func describe(_ s: TrainSettings) -> [String] {
            guard let a = s.architecture else { return ["relu", "-", "-", "-", "-", "-", "-"] }
            return [a.activation.rawValue, "\(a.k)", "\(a.resolvedAuxK(hidden: s.hidden))", "\(a.auxCoef)", "\(a.deadSteps)",
                    "\(a.thresholdInit)", "\(a.bandwidth)"]
        }
        let names: [Setting] = [.activation, .k, .auxK, .auxCoef, .deadSteps, .thresholdInit, .bandwidth]
        return zip(names, zip(describe(self), describe(other))).map { ($0.0, $0.1.0, $0.1.1) }
    }
}
