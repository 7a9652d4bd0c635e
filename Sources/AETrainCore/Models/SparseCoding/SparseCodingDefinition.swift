extension ModelKind {
    /// The sheet's Exercise 1: x ≈ W s with an L1 penalty on s, alternating the sources and a
    /// closed-form dictionary.
    public static let sparseCoding = ModelKind(declaring: "sparse-coding")
}

/// Sparse coding (`SparseCodingModel`) as the engine and the command line see it. It reads
/// `TrainSettings.sparseCoding` (`--source-update`, `--fista-steps`) besides λ and η.
public struct SparseCodingDefinition: ModelDefinition {
    public init() {}
    public var kind: ModelKind { .sparseCoding }

    /// λ = 1 as in the sheet's sparse runs, η = 0.01 (the dictionary step needs η > 0), h = 400,
    /// 30 alternations with a log line each, FISTA with 100 steps.
    public var defaults: TrainSettings {
        var s = TrainSettings()
        s.hidden = 400
        s.objective = ObjectiveSettings(lambda: 1, epsilon: 0, eta: 0.01)
        s.iterations = 30
        s.logEvery = 1
        s.sparseCoding = SparseCodingSettings()
        return s
    }

    public var settings: Set<Setting> { Setting.common.union([.lambda, .eta, .sourceUpdate, .fistaSteps]) }

    public func validate(_ settings: TrainSettings) throws {
        guard settings.objective.eta > 0 else {
            throw UserError("sparse coding needs \(Setting.eta.marker) > 0 (the dictionary step solves with Σ_SS + ηI), got \(settings.objective.eta)")
        }
        if let sc = settings.sparseCoding, sc.fistaSteps <= 0 {
            throw UserError("\(Setting.fistaSteps.marker) must be positive, got \(sc.fistaSteps)")
        }
    }

    public func label(run name: String, settings: TrainSettings) -> String {
        "\(name) (sparse-coding, λ = \(settings.objective.lambda))"
    }

    /// Every rank codes its own examples: there is no batch to split.
    public var splitsTheBatch: Bool { false }

    public func make(_ c: ModelContext) throws -> TrainableModel {
        try SparseCodingModel(shard: c.shard, settings: c.settings, comm: c.comm)
    }
}

/// How sparse coding updates the sources between dictionary steps.
public struct SparseCodingSettings: Equatable, Codable, Sendable {
    public enum SourceUpdate: String, CaseIterable, Codable, Sendable { case fista, relaxed }
    public var sourceUpdate: SourceUpdate = .fista
    /// FISTA steps per source update.
    public var fistaSteps: Int = 100
    public init(sourceUpdate: SourceUpdate = .fista, fistaSteps: Int = 100) {
        self.sourceUpdate = sourceUpdate; self.fistaSteps = fistaSteps
    }
}
