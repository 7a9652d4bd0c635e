import Foundation

/// Everything a run needs, as a plain value: the command line builds it, `TrainingRun`
/// carries it out. Validated once (`validate()`); merging the settings with a checkpoint's is
/// `TrainSettings.merged`.
public struct RunPlan {
    /// nil: the checkpoint's model when resuming, else `ModelRegistry.standard`.
    public var model: ModelKind?
    /// Trajectory settings given explicitly; the rest come from the model's defaults or the checkpoint.
    public var overrides = SettingOverrides()
    public var data = DataPlan()
    public var start = StartPoint.fresh
    public var checkpoints = CheckpointPolicy()
    public var output = OutputPolicy()
    public var execution = ExecutionOptions()
    /// Outputs beyond the standard ones (`TrainingRun` adds the table, progress line,
    /// metrics, images and model files itself). Rank 0 calls them.
    public var observers: [RunObserver] = []
    /// Fault injection for the tests.
    public var testHooks = TestHooks()
    public init() {}

    /// Checks that involve several parts of the plan, before any work starts.
    public func validate() throws {
        if checkpoints.every < 0 { throw UserError("⟨checkpoint-every⟩ must be ≥ 0, got \(checkpoints.every)") }
        if checkpoints.keep <= 0 { throw UserError("⟨keep-checkpoints⟩ must be positive, got \(checkpoints.keep)") }
        if let t = execution.threadsPerRank, t <= 0 { throw UserError("⟨threads⟩ must be positive, got \(t)") }
        let below = execution.stepOptions.sparseBelow
        if !(below >= 0 && below <= 1) { throw UserError("⟨sparse-below⟩ must be in [0, 1], got \(below)") }
        if execution.stepOptions.deterministic, execution.overlap == .always {
            throw UserError("⟨overlap⟩ always does not combine with ⟨deterministic⟩: its fixed-order sums are blocking")
        }
        try execution.gradientSum.check(deterministic: execution.stepOptions.deterministic, overlapAlways: execution.overlap == .always)
        if let shape = data.imageShape, ImageShape(parsing: shape) == nil {
            throw UserError("⟨image-shape⟩ must be HxW with positive integers, e.g. 37x28; got '\(shape)'")
        }
        if case .weights = start, let model, !model.definition.startsFromWeights {
            throw UserError("⟨init⟩ starts a sparse autoencoder from its weights; it does not apply to the \(model.rawValue) model")
        }
        if case .resume = start, let model, model.definition.isOnePass {
            throw UserError("⟨resume⟩ does not apply to \(model.rawValue): it is one pass")
        }
        if case .resume = start, output.overwrite { throw UserError("⟨overwrite⟩ starts a new run; it does not combine with ⟨resume⟩") }
        if let data = data.lfw { try data.validate() }
        if data.argument?.isEmpty == true { throw UserError("⟨data⟩ is empty; give a path, synthetic:N,H,W or embedded") }
        if data.evalData?.isEmpty == true { throw UserError("⟨eval-data⟩ is empty; give a path, synthetic:N,H,W or embedded") }
        if data.evalData != nil, overrides.evalFraction != nil {
            throw UserError("⟨eval-data⟩ and ⟨eval-fraction⟩ exclude each other: evaluate on another file or on held-out rows")
        }
        if output.directory?.isEmpty == true { throw UserError("⟨out⟩ is empty; give a directory") }
        if output.tensorboard?.isEmpty == true { throw UserError("⟨tensorboard⟩ is empty; give a directory") }
        if output.trace?.isEmpty == true { throw UserError("⟨trace⟩ is empty; give a file") }
    }

    /// A new run's settings as far as the plan decides them: the model's defaults under the
    /// flags (`--init`'s h aside). Nil when resuming: the checkpoint's settings come first.
    public func newRunSettings() throws -> TrainSettings? {
        if case .resume = start { return nil }
        return try TrainSettings.merged(overrides, over: nil, model: model ?? ModelRegistry.standard)
    }
}

/// Where the examples come from: `--data` as given, with the options that shape it.
public struct DataPlan: Equatable {
    /// nil: the embedded faces (or, resuming, the data the run recorded).
    public var argument: String?
    /// For an LFW tree; nil: the defaults (or, resuming, the recorded ones).
    public var lfw: LFWSettings?
    /// HxW for N×D data.
    public var imageShape: String?
    /// `--eval-data`: evaluated at every log line instead of held-out rows (nil: none, or,
    /// resuming, the recorded one).
    public var evalData: String?
    public init(argument: String? = nil, lfw: LFWSettings? = nil, imageShape: String? = nil, evalData: String? = nil) {
        self.argument = argument; self.lfw = lfw; self.imageShape = imageShape; self.evalData = evalData
    }
}

/// Where the parameters start.
public enum StartPoint: Equatable {
    /// The model's own initialization from the seed.
    case fresh
    /// A sparse autoencoder's V.npy, W.npy, b.npy, a.npy in this directory.
    case weights(String)
    /// The newest valid checkpoint of the run in this directory, with its settings and data.
    case resume(String)
}

public struct CheckpointPolicy: Equatable, Codable {
    /// Every this many iterations (0: only at the end and when stopped).
    public var every = 1000
    /// The newest this many are kept.
    public var keep = 3
    public init(every: Int = 1000, keep: Int = 3) { self.every = every; self.keep = keep }
}

public struct OutputPolicy: Equatable {
    /// nil: the --resume directory, else `defaultDirectory`.
    public var directory: String?
    public var defaultDirectory = "aetrain-run"
    /// Where the TensorBoard event file goes; nil: the run directory.
    public var tensorboard: String?
    /// A Chrome trace-event file of every rank's timeline (`TraceRecorder`); nil: none.
    public var trace: String?
    /// A new run into a directory that holds another run's files removes them first
    /// (otherwise it is refused).
    public var overwrite = false
    /// Print nothing but errors.
    public var quiet = false
    public var progress = ProgressLine.Mode.auto
    /// Recorded in config.json.
    public var commandLine: [String] = []
    public init() {}
}

/// How the run computes; none of it changes the trajectory.
public struct ExecutionOptions: Equatable {
    /// BLAS threads per rank; nil: this node's cores / ranks on this node.
    public var threadsPerRank: Int?
    /// The sparse autoencoder's kernels and overlap.
    public var stepOptions = StepOptions()
    public var overlap = OverlapMode.auto
    /// How the sparse autoencoder's ranks sum the gradient and apply Adam.
    public var gradientSum = GradientSumMode.auto
    /// Seconds a rank waits in a collective before the job ends (recorded in config.json).
    public var peerTimeout = 60.0
    public init() {}
}
