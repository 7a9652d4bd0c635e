extension ModelKind {
    /// The sheet's Exercise 3: z = relu(xV + b), x̂ = zW + a, trained with Adam.
    public static let sparseAutoencoder = ModelKind(declaring: "sparse-autoencoder")
}

/// The sparse autoencoder (`SparseAutoencoder`) as the engine and the command line see it.
public struct SparseAutoencoderDefinition: ModelDefinition {
    public init() {}
    public var kind: ModelKind { .sparseAutoencoder }

    /// The sheet's `train()`: h = 400, λ = 0 (ε and η follow λ), Adam with lr 1e-4, batch 100,
    /// iterations 0 … 10000, a log line every 1000.
    public var defaults: TrainSettings {
        var s = TrainSettings()
        s.hidden = 400
        s.objective = ObjectiveSettings(lambda: 0)
        s.adam = AdamSettings()
        s.batchSize = 100
        s.iterations = 10001
        s.logEvery = 1000
        return s
    }

    public var settings: Set<Setting> {
        Setting.common.union(Setting.adam).union([.lambda, .epsilon, .eta, .entropyFloor, .evalFraction])
            .union([.decoderNorm, .lrWarmup, .lrDecay, .lambdaWarmup, .precision])
            .union(Setting.architecture)
    }

    /// The sheet's ε = 0.01·λ and η = λ.
    public func objective(lambda: Double, over base: ObjectiveSettings) -> ObjectiveSettings {
        ObjectiveSettings(lambda: lambda, entropyFloor: base.entropyFloor)
    }

    public func label(run name: String, settings: TrainSettings) -> String {
        guard let a = settings.modernArchitecture else { return "\(name) (λ = \(settings.objective.lambda))" }
        switch a.activation {
        case .topk, .batchtopk: return "\(name) (\(a.activation.rawValue), k = \(a.k))"
        default: return "\(name) (\(a.activation.rawValue), λ = \(settings.objective.lambda))"
        }
    }

    public var startsFromWeights: Bool { true }
    public var takesStepOptions: Bool { true }

    public func make(_ c: ModelContext) throws -> TrainableModel {
        let model = try SparseAutoencoder(shard: c.shard, settings: c.settings, comm: c.comm, initial: c.initial, options: c.step)
        try c.gradientSum.checkGranted(resolved: c.step.sharedMemory, store: model.store)
        return model
    }
}
