extension ModelKind {
    /// The sheet's Exercise 2: s = Wᵀx, x̂ = W s, trained with Adam.
    public static let tiedLinear = ModelKind(declaring: "tied-linear")
}

/// The tied linear autoencoder (`TiedLinearModel`) as the engine and the command line see it.
public struct TiedLinearDefinition: ModelDefinition {
    public init() {}
    public var kind: ModelKind { .tiedLinear }

    /// k = 64 directions, no penalty, Adam with lr 1e-3, batch 100, 5001 iterations, a log
    /// line every 1000.
    public var defaults: TrainSettings {
        var s = TrainSettings()
        s.hidden = 64
        s.objective = ObjectiveSettings(lambda: 0, epsilon: 0, eta: 0)
        s.adam.learningRate = 1e-3
        s.batchSize = 100
        s.iterations = 5001
        s.logEvery = 1000
        return s
    }

    public var settings: Set<Setting> { Setting.common.union(Setting.adam).union([.evalFraction]) }

    public func label(run name: String, settings: TrainSettings) -> String { "\(name) (tied-linear, k = \(settings.hidden))" }

    public func make(_ c: ModelContext) throws -> TrainableModel {
        try TiedLinearModel(shard: c.shard, settings: c.settings, comm: c.comm)
    }
}
