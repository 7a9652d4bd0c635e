/// Everything that decides a run's trajectory, recorded in config.json and every checkpoint.
/// Each model reads the fields its definition names (`ModelDefinition.settings`, with its
/// `defaults`); the others keep their neutral values (0 or the defaults below) and are refused
/// as flags.
public struct TrainSettings: Equatable, Codable, Sendable {
    /// h: hidden units, atoms, directions or components.
    public var hidden: Int = 400
    public var objective = ObjectiveSettings(lambda: 0)
    public var adam = AdamSettings()
    public var batchSize: Int = 100
    /// Iterations 0 ..< iterations (the sheet: 0 … 10000); alternations for sparse coding.
    public var iterations: Int = 10001
    public var logEvery: Int = 1000
    public var seed: UInt64 = 0
    /// Sparse coding's source step (nil for the other models).
    public var sparseCoding: SparseCodingSettings?
    /// The fraction of the examples held out from training and evaluated at every log line
    /// (nil: none).
    public var evalFraction: Double?
    /// What the model sees of an example (`Normalization`); nil: sheet (as in runs from before
    /// it was recorded).
    public var normalize: Normalization.Kind?
    /// The sparse autoencoder's architecture (`ArchitectureSettings`); nil: the sheet's relu.
    public var architecture: ArchitectureSettings?
    /// Learning-rate and λ schedules; nil: constant.
    public var schedule: ScheduleSettings?
    /// The arithmetic of the step's dense products (`--precision`); nil: fp32, recorded as
    /// nothing so that fp32 runs keep their bytes. Not part of the trajectory's identity: a
    /// resume may switch it (`TrainingRun` says so in one line).
    public var precision: Precision?
    public init() {}

    /// The normalization's kind, nil meaning the sheet's.
    public var normalization: Normalization.Kind { normalize ?? .sheet }
    /// Every decoder atom (a row of W) is kept at unit norm (`--decoder-norm unit`).
    public var unitNormDecoder: Bool { architecture?.decoderNorm == .unit }
    /// The schedules, constant (`ScheduleSettings()`) when none is set.
    public var schedules: ScheduleSettings { schedule ?? ScheduleSettings() }
    /// The products' arithmetic, fp32 when none is recorded.
    public var productPrecision: Precision { precision ?? .fp32 }
    /// Whether iteration `i` writes a log line: every `logEvery`, and the last.
    public func logs(_ i: Int) -> Bool { i % logEvery == 0 || i == iterations - 1 }
}

/// A setting of `TrainSettings`, by the name errors use for it (the command line maps each
/// name to its flag).
public enum Setting: String, CaseIterable, Sendable {
    case hidden, lambda, epsilon, eta, entropyFloor, learningRate, beta1, beta2, adamEpsilon
    case batchSize, seed, iterations, logEvery, sourceUpdate, fistaSteps, evalFraction, normalize
    case decoderNorm, lrWarmup, lrDecay, lambdaWarmup, precision
    // The sparse autoencoder's architecture (`ArchitectureSettings`).
    case activation, k, thresholdInit, bandwidth, auxK, auxCoef, deadSteps
}

/// The settings given explicitly (on the command line); nil where not given.
public struct SettingOverrides: Equatable, Sendable {
    public var hidden: Int?
    public var lambda: Double?, epsilon: Double?, eta: Double?, entropyFloor: Double?
    public var learningRate: Double?, beta1: Double?, beta2: Double?, adamEpsilon: Double?
    public var batchSize: Int?, seed: UInt64?, iterations: Int?, logEvery: Int?
    public var sourceUpdate: SparseCodingSettings.SourceUpdate?, fistaSteps: Int?
    public var evalFraction: Double?
    public var normalize: Normalization.Kind?
    public var decoderNorm: ArchitectureSettings.DecoderNorm?
    public var lrWarmup: Int?, lrDecay: Double?, lambdaWarmup: Int?
    public var precision: Precision?
    public var activation: ArchitectureSettings.Activation?
    public var k: Int?, thresholdInit: Double?, bandwidth: Double?, auxK: Int?, auxCoef: Double?, deadSteps: Int?
    public init() {}

    /// The settings that were given, in `Setting` order.
    public var given: [Setting] {
        let values: [(Setting, Any?)] = [
            (.hidden, hidden), (.lambda, lambda), (.epsilon, epsilon), (.eta, eta), (.entropyFloor, entropyFloor),
            (.learningRate, learningRate), (.beta1, beta1), (.beta2, beta2), (.adamEpsilon, adamEpsilon),
            (.batchSize, batchSize), (.seed, seed), (.iterations, iterations), (.logEvery, logEvery),
            (.sourceUpdate, sourceUpdate), (.fistaSteps, fistaSteps), (.evalFraction, evalFraction),
            (.normalize, normalize), (.decoderNorm, decoderNorm), (.lrWarmup, lrWarmup), (.lrDecay, lrDecay),
            (.lambdaWarmup, lambdaWarmup), (.precision, precision), (.activation, activation), (.k, k), (.thresholdInit, thresholdInit),
            (.bandwidth, bandwidth), (.auxK, auxK), (.auxCoef, auxCoef), (.deadSteps, deadSteps),
        ]
        return values.compactMap { $0.1 == nil ? nil : $0.0 }
    }
}

extension TrainSettings {
    /// The run's settings: `overrides` applied over `base` (a checkpoint's settings, for a
    /// resumed run) or over `model`'s defaults. Where the settings are new, or λ is given and
    /// differs from the checkpoint's, ε and η not given follow λ (`ModelDefinition.objective`);
    /// otherwise a checkpoint's own ε and η are kept. `defaultHidden` (the `--init` weights' h) replaces the default h.
    public static func merged(_ o: SettingOverrides, over base: TrainSettings?, model: ModelKind,
                              defaultHidden: Int? = nil) throws -> TrainSettings {
        let definition = model.definition
        if let extra = o.given.first(where: { !definition.settings.contains($0) }) {
            throw UserError("\(extra.marker) does not apply to the \(model.rawValue) model")
        }
        var s = base ?? definition.defaults
        if base == nil, let defaultHidden { s.hidden = defaultHidden }
        if let v = o.hidden { s.hidden = v }
        try s.mergeArchitecture(o, model: model)
        if base == nil || (o.lambda != nil && o.lambda != base?.objective.lambda) {
            s.objective = s.modernArchitecture == nil
                ? definition.objective(lambda: o.lambda ?? s.objective.lambda, over: s.objective)
                : ObjectiveSettings(lambda: o.lambda ?? s.objective.lambda, epsilon: 0, eta: 0, entropyFloor: s.objective.entropyFloor)
        }
        if let v = o.epsilon { s.objective.epsilon = v }
        if let v = o.eta { s.objective.eta = v }
        if let v = o.entropyFloor { s.objective.entropyFloor = v }
        if let v = o.learningRate { s.adam.learningRate = v }
        if let v = o.beta1 { s.adam.beta1 = v }
        if let v = o.beta2 { s.adam.beta2 = v }
        if let v = o.adamEpsilon { s.adam.epsilon = v }
        if let v = o.batchSize { s.batchSize = v }
        if let v = o.seed { s.seed = v }
        if let v = o.iterations { s.iterations = v }
        if let v = o.logEvery { s.logEvery = v }
        if let v = o.evalFraction { s.evalFraction = v }
        if let v = o.normalize { s.normalize = v }
        if o.sourceUpdate != nil || o.fistaSteps != nil {
            var sc = s.sparseCoding ?? SparseCodingSettings()
            if let v = o.sourceUpdate { sc.sourceUpdate = v }
            if let v = o.fistaSteps { sc.fistaSteps = v }
            s.sparseCoding = sc
        }
        if let v = o.decoderNorm {
            var a = s.architecture ?? ArchitectureSettings()
            a.decoderNorm = v
            s.architecture = a
        }
        if o.lrWarmup != nil || o.lrDecay != nil || o.lambdaWarmup != nil {
            var schedule = s.schedule ?? ScheduleSettings()
            if let v = o.lrWarmup { schedule.lrWarmup = v }
            if let v = o.lrDecay { schedule.lrDecay = v }
            if let v = o.lambdaWarmup { schedule.lambdaWarmup = v }
            s.schedule = schedule
        }
        if let v = o.precision { s.precision = v == .fp32 ? nil : v }
        // The sheet's values are recorded as nothing, so that its config.json and checkpoints keep their bytes.
        if s.architecture == ArchitectureSettings() { s.architecture = nil }
        if s.schedule == ScheduleSettings() { s.schedule = nil }
        try s.validate(for: model)
        return s
    }

    /// The first setting that would change the trajectory if it differed from `other`'s, as
    /// "name: mine vs theirs"; nil when a run with `other` can continue this one. The number of
    /// iterations and the log interval may change.
    public func trajectoryDifference(from other: TrainSettings) -> String? {
        let pairs: [(Setting, String, String)] = [
            (.hidden, "\(hidden)", "\(other.hidden)"), (.batchSize, "\(batchSize)", "\(other.batchSize)"),
            (.seed, "\(seed)", "\(other.seed)"), (.lambda, "\(objective.lambda)", "\(other.objective.lambda)"),
            (.epsilon, "\(objective.epsilon)", "\(other.objective.epsilon)"), (.eta, "\(objective.eta)", "\(other.objective.eta)"),
            (.entropyFloor, "\(objective.entropyFloor)", "\(other.objective.entropyFloor)"),
            (.learningRate, "\(adam.learningRate)", "\(other.adam.learningRate)"), (.beta1, "\(adam.beta1)", "\(other.adam.beta1)"),
            (.beta2, "\(adam.beta2)", "\(other.adam.beta2)"), (.adamEpsilon, "\(adam.epsilon)", "\(other.adam.epsilon)"),
            (.sourceUpdate, sparseCoding?.sourceUpdate.rawValue ?? "-", other.sparseCoding?.sourceUpdate.rawValue ?? "-"),
            (.fistaSteps, sparseCoding.map { "\($0.fistaSteps)" } ?? "-", other.sparseCoding.map { "\($0.fistaSteps)" } ?? "-"),
            (.evalFraction, evalFraction.map { "\($0)" } ?? "none", other.evalFraction.map { "\($0)" } ?? "none"),
            (.normalize, normalization.rawValue, other.normalization.rawValue),
            (.decoderNorm, unitNormDecoder ? "unit" : "none", other.unitNormDecoder ? "unit" : "none"),
            (.lrWarmup, "\(schedules.lrWarmup)", "\(other.schedules.lrWarmup)"),
            (.lrDecay, "\(schedules.lrDecay)", "\(other.schedules.lrDecay)"),
            (.lambdaWarmup, "\(schedules.lambdaWarmup)", "\(other.schedules.lambdaWarmup)"),
        ] + architectureDifferences(from: other)
        return pairs.first { $0.1 != $0.2 }.map { "\($0.0.marker) \($0.1) here, \($0.2) in the checkpoint" }
    }

    /// Checks made before any work starts, then `model`'s own (none without a model); the
    /// message names the setting.
    public func validate(for model: ModelKind? = nil) throws {
        func positive(_ v: Int, _ s: Setting) throws { if v <= 0 { throw UserError("\(s.marker) must be positive, got \(v)") } }
        try positive(hidden, .hidden)
        try positive(batchSize, .batchSize)
        try positive(iterations, .iterations)
        try positive(logEvery, .logEvery)
        let o = objective, a = adam
        for (v, s) in [(o.lambda, Setting.lambda), (o.epsilon, .epsilon), (o.eta, .eta)] where !(v >= 0 && v.isFinite) {
            throw UserError("\(s.marker) must be a finite number ≥ 0, got \(v)")
        }
        guard o.entropyFloor > 0, o.entropyFloor.isFinite else { throw UserError("\(Setting.entropyFloor.marker) must be positive, got \(o.entropyFloor)") }
        guard a.learningRate > 0, a.learningRate.isFinite else { throw UserError("\(Setting.learningRate.marker) must be positive, got \(a.learningRate)") }
        for (v, s) in [(a.beta1, Setting.beta1), (a.beta2, .beta2)] where !(v >= 0 && v < 1) {
            throw UserError("\(s.marker) must be in [0, 1), got \(v)")
        }
        if let f = evalFraction, !(f > 0 && f <= 0.5) {
            throw UserError("\(Setting.evalFraction.marker) must be in (0, 0.5], got \(f)")
        }
        guard a.epsilon > 0, a.epsilon.isFinite else { throw UserError("\(Setting.adamEpsilon.marker) must be positive, got \(a.epsilon)") }
        if let schedule { try schedule.validate(lambda: o.lambda) }
        try architecture?.validate(hidden: hidden)
        try model?.definition.validate(self)
    }
}

extension Setting {
    /// How a core message names this setting: `⟨batch-size⟩`. The command line replaces
    /// the marker by the flag (`UserError.rendered`); elsewhere it reads as the bare name.
    public var marker: String { "⟨\(name)⟩" }

    /// kebab-case: batchSize → batch-size.
    public var name: String {
        rawValue.reduce(into: "") { out, c in
            if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
    }
}
