import Foundation

/// Something that watches a run: the table, the progress line, metrics.jsonl, the images,
/// the model's files. A new output is one new observer.
///
/// `TrainingRun` calls observers on rank 0 only, and makes a failure in one of them (a full
/// disk) stop every rank. Every method has a default that does nothing.
public protocol RunObserver: AnyObject {
    /// The run is set up: data loaded, model built (and restored), output directory made.
    func started(_ run: RunInfo) throws
    /// After every iteration (cheap: no files).
    func iterated(_ iteration: Int, loss: Double)
    /// A log line; `steps`: iterations since the previous one.
    func logged(_ record: LogRecord, steps: Int) throws
    func checkpointed(_ file: URL)
    /// The run ended; `result.outputs` is nil when the parameters were not finite.
    func finished(_ result: RunResult) throws
}

extension RunObserver {
    public func started(_ run: RunInfo) throws {}
    public func iterated(_ iteration: Int, loss: Double) {}
    public func logged(_ record: LogRecord, steps: Int) throws {}
    public func checkpointed(_ file: URL) {}
    public func finished(_ result: RunResult) throws {}
}

/// What observers learn when the run starts.
public struct RunInfo {
    public var model: ModelKind
    public var settings: TrainSettings
    public var dataset: DatasetInfo
    /// The first examples as loaded (the dataset mosaic).
    public var preview: [[Float]]
    public var directory: URL
    public var config: RunConfig
    /// The table's columns (what the model measures).
    public var columns: [LogColumn]
    /// The first line printed: data, model, ranks.
    public var banner: String
    /// Warnings to show (a damaged newer checkpoint skipped on resume).
    public var warnings: [String]
    /// Lines that say something about the run's settings (`TrainableModel.notes`), after the banner.
    public var notes: [String] = []
    /// The iteration this session starts at (past 0 when resumed).
    public var firstIteration: Int
    /// The model's filters as they are now (`TrainableModel.currentFilters`; local, rank 0's):
    /// call it from `logged` for the filters of that iteration.
    public var currentFilters: () -> [[Float]] = { [] }
}

/// How a run ended.
public enum RunOutcome: Equatable {
    case finished
    /// A rank was asked to stop (SIGTERM or SIGINT); all stopped before `iteration`.
    case stopped(iteration: Int)
    /// The loss became non-finite at `iteration`; the parameters are those before it.
    case diverged(iteration: Int, term: String, value: Double)
}

/// What observers learn at the end.
public struct RunResult {
    public var outcome: RunOutcome
    public var directory: URL
    /// nil when the parameters were not finite (nothing is written then).
    public var outputs: ModelOutputs?
    /// (k, h) codes of the dataset's first k examples, with the outputs.
    public var activations: [Float]?
    public var hidden: Int
    /// How often each unit fired over the training examples (models whose codes fire, with
    /// finite parameters).
    public var featureDensity: FeatureDensity?
    public var dataset: DatasetInfo
    /// The data's per-pixel mean (d), subtracted before dividing by `dataset.std`.
    public var mean: [Double]
    /// The newest checkpoint written or resumed from, if any.
    public var lastCheckpoint: URL?
}
