import Foundation

/// What the model sees of an example x (d values): x_n, computed once when the data loads and
/// undone on the way out (reconstructions in the data's own units). Part of the model: a run
/// records it (config.json's `normalization`, `mean.npy`, every checkpoint), and evaluation,
/// encoding, export, `--init` and `--resume` apply the recorded statistics, never new ones.
///
///     sheet       x_n = (x − μ) / σ      μ (d) per-dimension mean, σ the std of all centred
///                                        entries (numpy's X.std()): the sheet's standardization
///     center      x_n = x − μ
///     none        x_n = x
///     unit-norm   x_n = x · √d / ‖x‖     each example on its own (Gao et al. 2024; SAELens's
///                                        `constant_norm_rescale`): ‖x_n‖² = d
///
/// μ and σ are reduced in double over the training examples of every rank (the held-out rows
/// of `--eval-fraction` are left out). unit-norm has no dataset statistics: its factor is the
/// example's own, so it is applied to every example that is encoded and undone with that
/// example's norm.
public struct Normalization: Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case sheet, none, center
        case unitNorm = "unit-norm"

        /// Whether the model sees the data centred (by the training examples' mean): otherwise
        /// the fraction of the squared norm explained differs from the explained variance.
        public var isCentred: Bool { self == .sheet || self == .center }
    }

    public var kind: Kind
    /// (d) μ; zeros for none and unit-norm.
    public var mean: [Double]
    /// σ for sheet; 1 for the others.
    public var scale: Double

    public init(kind: Kind, mean: [Double], scale: Double) {
        self.kind = kind; self.mean = mean; self.scale = scale
    }

    /// What config.json and checkpoints record beside μ (mean.npy, a checkpoint section).
    public struct Record: Codable, Equatable, Sendable {
        public var kind: Kind
        public var scale: Double
        public init(kind: Kind, scale: Double) { self.kind = kind; self.scale = scale }
    }
    public var record: Record { Record(kind: kind, scale: scale) }
    public init(_ record: Record, mean: [Double]) { self.init(kind: record.kind, mean: mean, scale: record.scale) }

    /// Whether x_n = (x − μ)/σ with dataset constants (which fold exactly into linear weights).
    public var isAffine: Bool { kind != .unitNorm }


    // MARK: Statistics

    /// The statistics of `kind` over the rows of `values` ((rows.count, d), this rank's
    /// examples `rows`) that are not in `excluded` (ascending global indices), reduced over
    /// every rank; `n` is the number of examples counted on all ranks. Collective.
    static func compute(_ kind: Kind, values: UnsafePointer<Float>, rows: Range<Int>, d: Int, n: Int,
                        excluded: [Int], comm: Communicator, path: String) throws -> Normalization {
        var counted = [Bool](repeating: true, count: rows.count)
        for row in excluded where rows.contains(row) { counted[row - rows.lowerBound] = false }
        var mean = [Double](repeating: 0, count: d)
        guard kind == .sheet || kind == .center else { return Normalization(kind: kind, mean: mean, scale: 1) }

        // Per-dimension mean over the n counted examples.
        for i in 0..<rows.count where counted[i] {
            let row = values + i * d
            for k in 0..<d { mean[k] += Double(row[k]) }
        }
        try comm.allreduceSum(&mean)
        for k in 0..<d { mean[k] /= Double(n) }
        guard kind == .sheet else { return Normalization(kind: kind, mean: mean, scale: 1) }

        // Standard deviation of all centred entries (numpy's X.std(), ddof 0).
        var squares = [0.0]
        for i in 0..<rows.count where counted[i] {
            let row = values + i * d
            for k in 0..<d {
                let c = Double(row[k]) - mean[k]
                squares[0] += c * c
            }
        }
        try comm.allreduceSum(&squares)
        let std = (squares[0] / Double(n * d)).squareRoot()
        guard std > 0, std.isFinite else {
            throw UserError("\(path): every example is the same image (standard deviation 0); nothing to learn")
        }
        return Normalization(kind: kind, mean: mean, scale: std)
    }

    // MARK: Applying and undoing

    /// x ← x_n for `count` examples of d values at `values`, the first being global row
    /// `first` (for messages). Returns each example's factor for `undo` (unit-norm: ‖x‖/√d),
    /// or [] for the dataset-wide kinds.
    func apply(to values: UnsafeMutablePointer<Float>, count: Int, d: Int, first: Int, path: String) throws -> [Double] {
        switch kind {
        case .none:
            return []
        case .sheet, .center:
            for i in 0..<count {
                let row = values + i * d
                for k in 0..<d { row[k] = Float((Double(row[k]) - mean[k]) / scale) }
            }
            return []
        case .unitNorm:
            let root = Double(d).squareRoot()
            var norms = [Double](repeating: 0, count: count)
            for i in 0..<count {
                let row = values + i * d
                var squares = 0.0
                for k in 0..<d { squares += Double(row[k]) * Double(row[k]) }
                let norm = squares.squareRoot()
                guard norm > 0 else {
                    throw UserError("\(path): example \(first + i) is all zeros; ⟨normalize⟩ unit-norm cannot scale it to norm √D")
                }
                let factor = root / norm
                for k in 0..<d { row[k] = Float(Double(row[k]) * factor) }
                norms[i] = norm / root
            }
            return norms
        }
    }

    /// A model output in normalized units, y (d values), back in the data's own: y·σ + μ, or
    /// y·‖x‖/√d with `factor` the example's own from `apply`. `offset` (d) is added to y first
    /// (the decoder's bias).
    func undo(_ y: UnsafeMutablePointer<Float>, d: Int, offset: [Float], factor: Double) {
        switch kind {
        case .none, .sheet, .center:
            for k in 0..<d { y[k] = Float((Double(y[k]) + Double(offset[k])) * scale + mean[k]) }
        case .unitNorm:
            for k in 0..<d { y[k] = Float((Double(y[k]) + Double(offset[k])) * factor) }
        }
    }
}

/// How a loaded dataset is normalized.
public enum NormalizationPlan: Sendable {
    /// With statistics of this data (its training examples).
    case compute(Normalization.Kind)
    /// With a trained run's statistics (encoding, evaluation data, `--init`, `--resume`);
    /// `mismatch` words the error for data of another D (given that D).
    case given(Normalization, mismatch: (@Sendable (Int) -> String)? = nil)
}
