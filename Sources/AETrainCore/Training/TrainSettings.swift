/// Everything that decides a training run's trajectory, with the sheet's `train()` defaults.
public struct TrainSettings: Equatable, Codable, Sendable {
    public var hidden: Int = 400
    public var objective = ObjectiveSettings(lambda: 0)
    public var adam = AdamSettings()
    public var batchSize: Int = 100
    /// Iterations 0 ..< iterations (the sheet: 0 … 10000).
    public var iterations: Int = 10001
    public var logEvery: Int = 1000
    public var seed: UInt64 = 0
    public init() {}

    /// The first setting that would change the trajectory if it differed from `other`'s, as
    /// "name: mine vs theirs"; nil when a run with `other` can continue this one. The number of
    /// iterations and the log interval may change.
    public func trajectoryDifference(from other: TrainSettings) -> String? {
        let pairs: [(String, String, String)] = [
            ("--hidden", "\(hidden)", "\(other.hidden)"), ("--batch-size", "\(batchSize)", "\(other.batchSize)"),
            ("--seed", "\(seed)", "\(other.seed)"), ("--lambda", "\(objective.lambda)", "\(other.objective.lambda)"),
            ("--eps", "\(objective.epsilon)", "\(other.objective.epsilon)"), ("--eta", "\(objective.eta)", "\(other.objective.eta)"),
            ("--entropy-floor", "\(objective.entropyFloor)", "\(other.objective.entropyFloor)"),
            ("--lr", "\(adam.learningRate)", "\(other.adam.learningRate)"), ("--beta1", "\(adam.beta1)", "\(other.adam.beta1)"),
            ("--beta2", "\(adam.beta2)", "\(other.adam.beta2)"), ("--adam-eps", "\(adam.epsilon)", "\(other.adam.epsilon)"),
        ]
        return pairs.first { $0.1 != $0.2 }.map { "\($0.0) \($0.1) here, \($0.2) in the checkpoint" }
    }

    /// Checks made before any work starts; the message names the flag.
    public func validate() throws {
        func positive(_ v: Int, _ flag: String) throws { if v <= 0 { throw UserError("\(flag) must be positive, got \(v)") } }
        try positive(hidden, "--hidden")
        try positive(batchSize, "--batch-size")
        try positive(iterations, "--iterations")
        try positive(logEvery, "--log-every")
        let o = objective, a = adam
        for (v, flag) in [(o.lambda, "--lambda"), (o.epsilon, "--eps"), (o.eta, "--eta")] where !(v >= 0 && v.isFinite) {
            throw UserError("\(flag) must be a finite number ≥ 0, got \(v)")
        }
        guard o.entropyFloor > 0, o.entropyFloor.isFinite else { throw UserError("--entropy-floor must be positive, got \(o.entropyFloor)") }
        guard a.learningRate > 0, a.learningRate.isFinite else { throw UserError("--lr must be positive, got \(a.learningRate)") }
        for (v, flag) in [(a.beta1, "--beta1"), (a.beta2, "--beta2")] where !(v >= 0 && v < 1) {
            throw UserError("\(flag) must be in [0, 1), got \(v)")
        }
        guard a.epsilon > 0, a.epsilon.isFinite else { throw UserError("--adam-eps must be positive, got \(a.epsilon)") }
    }
}
