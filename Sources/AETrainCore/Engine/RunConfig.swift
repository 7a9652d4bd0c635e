/// Everything recorded about a run, written as config.json.
public struct RunConfig: Codable {
    /// nil in runs from before every model recorded it: the sparse autoencoder (`ModelRegistry.standard`).
    public var model: ModelKind?
    /// Names this run in its checkpoints: a resumed run loads only its own.
    public var runID: String?
    public var settings: TrainSettings
    public var dataset: DatasetInfo
    public var ranks: Int
    public var blasThreadsPerRank: Int
    public var sampler: String = "global"
    public var started: String
    public var commandLine: [String]
    /// `--data` as given (nil: the embedded faces), with the LFW and image-shape options, so
    /// that `--resume` finds the same data.
    public var data: String?
    public var lfw: LFWSettings?
    public var imageShape: String?
    /// The checkpoint this run continued from, if any.
    public var resumedFrom: String?
    /// Checkpoint cadence and how many are kept (nil for a one-shot model).
    public var checkpoints: CheckpointPolicy?
    /// How the run computed (does not change the trajectory).
    public var execution: Execution?
    /// The examples held out from training (`--eval-fraction`), global indices ascending.
    public var heldOutRows: [Int]?
    /// What the model sees of an example: the kind and σ; μ is mean.npy. nil in runs from
    /// before it was recorded: the sheet's, σ = `dataset.std`.
    public var normalization: Normalization.Record?
    /// `--eval-data` as given, and what it was (fingerprint, N), so that `--resume` evaluates
    /// on the same examples.
    public var evalData: String?
    public var evalDataset: DatasetInfo?

    public struct Execution: Codable, Equatable {
        public var kernels: String?
        public var sparseBelow: Double?
        public var overlap: String?
        public var overlapEnabled: Bool?
        /// The deterministic step (`--deterministic`): the same bits on 1, 2 and 4 ranks.
        public var deterministic: Bool?
        public var peerTimeoutSeconds: Double
        /// `--gradient-sum` as given, and whether the ranks shared memory.
        public var gradientSum: String?
        public var sharedMemory: Bool?
    }

    public init(model: ModelKind, runID: String, settings: TrainSettings, dataset: DatasetInfo, ranks: Int, blasThreadsPerRank: Int, started: String,
                commandLine: [String], data: DataPlan, resumedFrom: String?, checkpoints: CheckpointPolicy?, execution: Execution, heldOutRows: [Int]? = nil,
                normalization: Normalization.Record? = nil, evalDataset: DatasetInfo? = nil) {
        self.model = model; self.runID = runID; self.settings = settings; self.dataset = dataset; self.ranks = ranks
        self.blasThreadsPerRank = blasThreadsPerRank; self.started = started; self.commandLine = commandLine
        self.data = data.argument; self.lfw = data.lfw; self.imageShape = data.imageShape; self.resumedFrom = resumedFrom
        self.checkpoints = checkpoints; self.execution = execution; self.heldOutRows = heldOutRows
        self.normalization = normalization; self.evalData = data.evalData; self.evalDataset = evalDataset
    }
}

extension RunConfig.Execution {
    /// The execution options of a model that `takesStepOptions`; only the peer timeout for another.
    /// - e: as asked; resolved: as every rank resolved it; sharedMemory: the model got its window.
    init(_ e: ExecutionOptions, model: any ModelDefinition, resolved: ResolvedExecution, sharedMemory: Bool) {
        let autoencoder = model.takesStepOptions
        self.init(kernels: autoencoder ? e.stepOptions.kernels.rawValue : nil, sparseBelow: autoencoder ? e.stepOptions.sparseBelow : nil,
                  overlap: autoencoder ? e.overlap.rawValue : nil,
                  overlapEnabled: autoencoder ? resolved.stepOptions.overlap : nil,
                  deterministic: autoencoder ? resolved.stepOptions.deterministic : nil,
                  peerTimeoutSeconds: e.peerTimeout,
                  gradientSum: autoencoder ? e.gradientSum.rawValue : nil, sharedMemory: autoencoder ? sharedMemory : nil)
    }
}
