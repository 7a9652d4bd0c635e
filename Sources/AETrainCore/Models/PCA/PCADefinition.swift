extension ModelKind {
    /// The principal components, in one pass: the covariance, then its eigen-decomposition.
    public static let pca = ModelKind(declaring: "pca")
}

/// PCA (`PCAModel`) as the engine and the command line see it: one pass, no checkpoints.
public struct PCADefinition: ModelDefinition {
    public init() {}
    public var kind: ModelKind { .pca }

    /// k = 64 components, one iteration with its log line.
    public var defaults: TrainSettings {
        var s = TrainSettings()
        s.hidden = 64
        s.objective = ObjectiveSettings(lambda: 0, epsilon: 0, eta: 0)
        s.iterations = 1
        s.logEvery = 1
        return s
    }

    public var settings: Set<Setting> { [.hidden, .normalize] }

    /// The components are those of the centred data: only the normalizations that centre.
    public func validate(_ settings: TrainSettings) throws {
        let n = settings.normalization
        if n != .sheet, n != .center {
            throw UserError("pca centres the data: \(Setting.normalize.marker) must be sheet or center, got \(n.rawValue)")
        }
    }

    public func label(run name: String, settings: TrainSettings) -> String { "\(name) (PCA, k = \(settings.hidden))" }

    /// The covariance sums every rank's examples: there is no batch to split.
    public var splitsTheBatch: Bool { false }
    public var isOnePass: Bool { true }

    public func make(_ c: ModelContext) throws -> TrainableModel {
        try PCAModel(shard: c.shard, components: c.settings.hidden, comm: c.comm)
    }
}
