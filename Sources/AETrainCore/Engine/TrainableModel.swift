import Foundation

/// What `TrainingRun` needs from a model: one iteration over this rank's shard, what it logs,
/// what its checkpoint holds and what it leaves behind. The engine does the rest (the loop,
/// stops, checkpoints, resume, the watchdog's hint, logging, outputs).
///
/// One instance per rank. Methods marked collective are called on every rank in the same
/// order; the others are local.
public protocol TrainableModel: AnyObject {
    /// d and h, as checkpoints record them.
    var shape: ModelShape { get }
    /// The table's columns: what this model measures, in order.
    var columns: [LogColumn] { get }
    /// The banner's description of the model ("h = 400, λ = 1, …").
    var banner: String { get }
    /// Lines printed after the banner about what the settings will train (default: none).
    var notes: [String] { get }
    /// False for a one-shot model (PCA): no checkpoints.
    var checkpoints: Bool { get }

    /// Iteration `iteration` on this rank's shard (collective). `stop`: this rank was asked to
    /// stop; the model sums it with the other ranks' in a reduction it makes anyway and
    /// returns whether any rank was. A model whose iteration can run long also checks
    /// `StopRequest` inside it, collectively, and may abandon the iteration (`completed`). When the returned record holds a non-finite term, the
    /// parameters are still those before the iteration.
    func iterate(_ iteration: Int, stop: Bool) throws -> Iteration
    /// Adds the statistics kept since the previous log line (dead units, time split) to
    /// `record` and starts a new window (local).
    func closeWindow(_ record: inout LogRecord)
    /// A hash of the parameters, equal on every rank when they agree.
    func checksum() -> UInt64
    var parametersAreFinite: Bool { get }

    /// The model's state between iterations (collective: it may gather); rank 0's is written.
    func checkpointState() throws -> ModelState
    /// Continues from `checkpoint` (read on every rank); the engine has checked its settings,
    /// data and shape.
    func restore(_ checkpoint: Checkpoint, file: String) throws
    /// The codes of this rank's examples `rows` (global indices inside its shard), (rows.count, h).
    func codes(ofRows rows: Range<Int>) -> [Float]
    /// Files and lines for the end of the run (collective); rank 0's are written.
    func outputs() throws -> ModelOutputs
    /// Whether `heldOutSums` measures anything (the same on every rank).
    var evaluatesHeldOut: Bool { get }
    /// Held-out evaluation, local: the sums over this rank's examples `rows` of `data` (global
    /// indices it holds, never trained on: held-out rows of the training shard, or `--eval-data`,
    /// normalized alike) under the current parameters; the engine reduces them.
    func heldOutSums(of data: DatasetShard, rows: [Int]) -> HeldOutSums
    /// The first filters of `outputs().filters` as they are now, for a log line (local, cheap).
    /// Empty (the default): the model shows its filters only at the end.
    func currentFilters() -> [[Float]]
    /// Whether its codes are sparse, a unit "firing" where its code is nonzero, so that the
    /// run measures their `FeatureDensity` (false, the default: linear projections, which
    /// are almost never zero).
    var codesFire: Bool { get }
    /// Whether the node's ranks hold its parameters in one shared-memory window
    /// (`--gradient-sum`; config.json records it). Default: false, each rank its own.
    var sharesParameterMemory: Bool { get }
    /// Records the spans inside an iteration into `trace` from now on (`--trace`); the engine
    /// records the iteration, log lines and checkpoints itself. Default: nothing inside.
    func record(into trace: TraceRecorder)
}

extension TrainableModel {
    public var checkpoints: Bool { true }
    public var notes: [String] { [] }
    public var evaluatesHeldOut: Bool { false }
    public func heldOutSums(of data: DatasetShard, rows: [Int]) -> HeldOutSums { HeldOutSums(units: 0) }
    public func currentFilters() -> [[Float]] { [] }
    public var codesFire: Bool { false }
    public var sharesParameterMemory: Bool { false }
    public func record(into trace: TraceRecorder) {}
}

/// Sums over held-out examples that `TrainingRun` reduces across ranks into the `eval_`
/// terms of a log line.
public struct HeldOutSums {
    /// Σ‖x_i − x̂_i‖², Σ‖x_i‖², active units, examples.
    public var squaredError = 0.0, squaredNorm = 0.0, active = 0.0, examples = 0.0
    /// (h) in how many examples each unit fired; empty for a model whose codes do not "fire".
    public var fired: [Double]
    /// (d) Σ_i x_i, for the sum of squares about the examples' mean (`addSquares`); empty: the
    /// model measures Σ‖x_i‖² only, and explained variance is taken about 0.
    public var columnSums: [Double]
    public init(units: Int, d: Int = 0) {
        fired = [Double](repeating: 0, count: units)
        columnSums = [Double](repeating: 0, count: d)
    }

    /// Adds `count` rows of `x` (count, d) to Σ‖x_i‖² and Σ_i x_i, in double (`BatchSquares`).
    public mutating func addSquares(rows x: UnsafePointer<Float>, count: Int) {
        let d = columnSums.count
        var squares = 0.0
        columnSums.withUnsafeMutableBufferPointer { sums in
            for i in 0..<count {
                let row = x + i * d
                for k in 0..<d {
                    let v = Double(row[k])
                    sums[k] += v
                    squares += v * v
                }
            }
        }
        squaredNorm += squares
    }
}

/// One iteration's outcome.
public struct Iteration {
    /// The terms of this iteration (its `seconds` is the engine's to fill).
    public var record: LogRecord
    /// Some rank was asked to stop.
    public var stopRequested: Bool
    /// False when a stop request cut the iteration short (a long inner loop) and the model
    /// is still in its state from before it: the run checkpoints that state and stops, and a
    /// resumed run does the whole iteration again.
    public var completed = true
    public init(record: LogRecord, stopRequested: Bool, completed: Bool = true) {
        self.record = record; self.stopRequested = stopRequested; self.completed = completed
    }
}

/// What a checkpoint holds beyond the engine's header.
public struct ModelState {
    public var sections: [(name: String, values: Checkpoint.Values)]
    /// The batch sampler's generator, if the model draws batches.
    public var samplerRNG: [UInt64]?
    public init(sections: [(name: String, values: Checkpoint.Values)], samplerRNG: [UInt64]? = nil) {
        self.sections = sections; self.samplerRNG = samplerRNG
    }
}

/// What a model leaves in the run directory at the end, beside what the engine writes
/// (config.json, metrics.jsonl, dataset.png, activations.npy, mean.npy). Its files are the
/// model's part of the run's final set (`FinalFiles`): a new file of a model goes here, and
/// only here (and in `RunDirectoryClaim.runFiles`, so that ⟨overwrite⟩ removes it).
public struct ModelOutputs {
    /// float32 `.npy` files: name, shape, values.
    public var arrays: [(name: String, shape: [Int], values: [Float])] = []
    /// Other files, as bytes.
    public var files: [(name: String, data: Data)] = []
    /// Vectors of d values shown as images in filters.png (at most 64 are shown).
    public var filters: [[Float]] = []
    /// Lines printed at the end.
    public var lines: [String] = []
    public init() {}
}
