/// A model's name, as users type it (`--model`) and as config.json and checkpoints record it.
/// Each model declares its own in its folder (`ModelDefinition.kind`); the registered ones
/// (`ModelRegistry.all`) are the only values there are. Encoded as the bare name; a config.json
/// or checkpoint without one is the sparse autoencoder's (`ModelRegistry.standard`).
public struct ModelKind: RawRepresentable, Hashable, Codable, CaseIterable, Sendable {
    public let rawValue: String

    /// A registered model's name; nil for any other.
    public init?(rawValue: String) {
        guard ModelRegistry.all.contains(where: { $0.kind.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    /// For a model's definition to declare its name.
    init(declaring name: String) { rawValue = name }

    /// Every registered model, in `ModelRegistry.all`'s order.
    public static var allCases: [ModelKind] { ModelRegistry.all.map(\.kind) }

    /// What this model reads, its defaults, how it is built.
    public var definition: any ModelDefinition {
        guard let found = ModelRegistry.all.first(where: { $0.kind == self }) else {
            preconditionFailure("\(rawValue) is declared but not listed in ModelRegistry.all")
        }
        return found
    }
}

/// What a model is built from, on one rank.
public struct ModelContext {
    /// This rank's examples (with its held-out rows, if any).
    public var shard: DatasetShard
    /// The run's settings, merged and validated.
    public var settings: TrainSettings
    public var comm: Communicator
    /// How the step computes, already resolved for this run (kernels, overlap, shared memory,
    /// deterministic, threads); read by the models whose definition `takesStepOptions`.
    public var step: StepOptions
    /// `--gradient-sum` as asked: `shared-memory` asked for but not granted is an error.
    public var gradientSum: GradientSumMode
    /// `--init`'s weights, for a model that `startsFromWeights` (nil otherwise).
    public var initial: ModelWeights?

    public init(shard: DatasetShard, settings: TrainSettings, comm: Communicator, step: StepOptions = StepOptions(),
                gradientSum: GradientSumMode = .auto, initial: ModelWeights? = nil) {
        self.shard = shard; self.settings = settings; self.comm = comm; self.step = step; self.gradientSum = gradientSum
        self.initial = initial
    }
}

/// Everything the engine and the command line need to know about a model before it exists:
/// its name, the settings it reads and their defaults, what the run may ask of it, and how it
/// is built. One per model, in the model's folder (`Models/<Name>/<Name>Definition.swift`),
/// listed once in `ModelRegistry.all`; `TrainSettings`, `RunPlan`, `RunConfig` and
/// `TrainingRun` ask it instead of naming models.
///
/// Restoring is the built model's own (`TrainableModel.restore`, from what its
/// `checkpointState` wrote): the engine first checks the checkpoint's settings, data and
/// shape against the built model, then restores it.
public protocol ModelDefinition: Sendable {
    /// The name users type and runs record.
    var kind: ModelKind { get }
    /// The settings before any flag: every one the model reads, with its own values.
    var defaults: TrainSettings { get }
    /// The settings this model reads; a flag for another one is a usage error. With
    /// `evalFraction` among them the model evaluates held-out examples (`--eval-fraction`,
    /// `--eval-data`).
    var settings: Set<Setting> { get }
    /// ε and η for a new λ where the user gave neither. Default: λ alone changes.
    func objective(lambda: Double, over base: ObjectiveSettings) -> ObjectiveSettings
    /// The model's own checks of its settings, after the common ones (`TrainSettings.validate`).
    /// Default: none.
    func validate(_ settings: TrainSettings) throws
    /// How `compare` and `report` name a run of this model: its directory's `name` and the
    /// setting that tells such runs apart.
    func label(run name: String, settings: TrainSettings) -> String
    /// Every rank computes a piece of each global batch, so the batch holds at least one
    /// example per rank. Default: true.
    var splitsTheBatch: Bool { get }
    /// `--init` can start it from a trained sparse autoencoder's weights. Default: false.
    var startsFromWeights: Bool { get }
    /// One pass and no checkpoints: nothing to resume. Default: false.
    var isOnePass: Bool { get }
    /// It reads `ModelContext.step`, and config.json records the execution options. Default: false.
    var takesStepOptions: Bool { get }
    /// The model on this rank, from fresh or from `context.initial` (collective: every rank
    /// builds its own).
    func make(_ context: ModelContext) throws -> TrainableModel
}

extension ModelDefinition {
    public func objective(lambda: Double, over base: ObjectiveSettings) -> ObjectiveSettings {
        var o = base
        o.lambda = lambda
        return o
    }
    public func validate(_ settings: TrainSettings) throws {}
    public var splitsTheBatch: Bool { true }
    public var startsFromWeights: Bool { false }
    public var isOnePass: Bool { false }
    public var takesStepOptions: Bool { false }

    /// Held-out evaluation applies (`--eval-fraction`, `--eval-data`).
    public var evaluatesHeldOut: Bool { settings.contains(.evalFraction) }
}

extension Setting {
    /// What every trained model reads: the size, the seed, the length and what it sees of an example.
    public static let common: Set<Setting> = [.hidden, .seed, .iterations, .logEvery, .normalize]
    /// Adam on sampled global batches.
    public static let adam: Set<Setting> = [.learningRate, .beta1, .beta2, .adamEpsilon, .batchSize]
}
