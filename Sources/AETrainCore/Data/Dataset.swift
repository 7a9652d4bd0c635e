import Foundation

/// Where the training examples come from.
public enum DataSource: Equatable, Sendable, CustomStringConvertible {
    /// The 100 LFW face crops (25×25) shipped with aetrain (see Resources/make_lfw_faces.py).
    case embedded
    /// A `.npy` file: N×H×W, or N×D with an image shape given separately.
    case npy(path: String)
    /// Generated images, `synthetic:N,H,W`, deterministic in the seed.
    case synthetic(SyntheticSpec, seed: UInt64)
    /// LFW's JPEG tree (`DIR/Person_Name/Person_Name_0001.jpg`), preprocessed as scikit-learn does.
    case lfw(path: String, settings: LFWSettings)

    /// `--data` as the user gave it: nothing or `embedded` means the embedded faces, a
    /// directory is an LFW tree, `synthetic:N,H,W` is generated, anything else is a `.npy`
    /// file (a file named `embedded` is reached as `./embedded`).
    public init(argument: String?, seed: UInt64, lfw: LFWSettings = LFWSettings()) throws {
        guard let argument, argument != "embedded" else { self = .embedded; return }
        var isDir: ObjCBool = false
        if let spec = try SyntheticSpec.parse(argument) {
            self = .synthetic(spec, seed: seed)
        } else if FileManager.default.fileExists(atPath: argument, isDirectory: &isDir), isDir.boolValue {
            try lfw.validate()
            self = .lfw(path: argument, settings: lfw)
        } else {
            self = .npy(path: argument)
        }
    }

    public var description: String {
        switch self {
        case .embedded: "embedded:lfw_faces_25x25"
        case .npy(let path): path
        case .synthetic(let spec, _): "synthetic:\(spec.examples),\(spec.shape.height),\(spec.shape.width)"
        case .lfw(let path, _): path
        }
    }

    /// Path of the embedded dataset: SwiftPM's resource bundle beside the executable.
    static func embeddedPath() throws -> String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let file = exe.appendingPathComponent("aetrain_AETrainCore.resources/lfw_faces_25x25.npy")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw UserError("the embedded dataset is missing: expected \(file.path) (keep aetrain_AETrainCore.resources beside the binary, or pass ⟨data⟩)")
        }
        return file.path
    }
}

/// What the whole dataset is, the same on every rank.
public struct DatasetInfo: Codable, Equatable, Sendable {
    public var source: String
    public var examples: Int
    public var imageShape: ImageShape
    public var dtype: String
    /// Standardization: x ← (x − mean_pixel) / std, std over all centred entries (numpy's X.std()).
    public var std: Double
    /// Order-independent hash of every example's pixels (before standardization) and its index,
    /// as 16 hex digits: the same whatever the number of ranks.
    public var fingerprint: String
}

/// This rank's contiguous block of examples, standardized with whole-dataset statistics.
/// float32 values in one allocation of at least one element, so that its address exists
/// even for an empty shard.
struct RowStorage {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: 0, count: max(1, count))
        self.count = count
    }
    /// `rows` examples of `d` pixels, once the memory budget allows them (`of` names the data).
    init(rows: Int, d: Int, of what: String, comm: Communicator) throws {
        let count = try Sizes.product([rows, d], naming: "\(what): this rank's \(rows) examples of \(d) pixels")
        var estimate = MemoryEstimate()
        estimate.add(Float.self, count)
        try MemoryBudget.check(estimate, for: "this rank's \(rows) examples of \(d) pixels of \(what)", comm: comm)
        self.init(count: count)
    }
    func deallocate() { base.deallocate() }
    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }
}

public final class DatasetShard {
    public private(set) var info: DatasetInfo
    /// Global indices of the examples held here.
    public let rows: Range<Int>
    public var d: Int { info.imageShape.pixels }
    /// (rows.count, d) normalized values, row-major.
    public var values: UnsafeMutableBufferPointer<Float> { storage.buffer }
    /// Bytes this shard holds (for the memory budget of what is allocated next to it).
    public var bytes: Int { storage.count * MemoryLayout<Float>.stride }
    private let storage: RowStorage
    /// What the values went through (`Normalization`).
    public private(set) var normalization = Normalization(kind: .none, mean: [], scale: 1)
    /// (rows.count) unit-norm's factor ‖x‖/√d of each example, which undoes it; empty otherwise.
    private var exampleFactors: [Double] = []
    /// (d) the mean subtracted by the normalization (zeros for none and unit-norm).
    public var pixelMean: [Double] { normalization.mean }
    /// The dataset's first examples as loaded, before standardization (on rank 0; empty
    /// elsewhere), for the dataset mosaic.
    public let preview: [[Float]]
    /// The examples held out from training, if any (`--eval-fraction`), chosen when it loads.
    public private(set) var split: HeldOutSplit?
    /// Examples the batch sampler draws from.
    public var trainingCount: Int { split?.training.count ?? info.examples }
    /// The global index of the sampler's `position`.
    @inline(__always) public func trainingRow(_ position: Int) -> Int { split.map { Int($0.training[position]) } ?? position }
    /// "the dataset (N examples)", or "the M training examples (K held out)".
    public var trainingDescription: String {
        guard let split else { return "the dataset (\(info.examples) examples)" }
        return "the \(split.training.count) training examples (\(split.heldOut.count) held out)"
    }
    /// This rank's held-out examples (global indices).
    public var heldOutRows: [Int] { split?.heldOut(in: rows) ?? [] }
    public static let previewCount = 64

    init(info: DatasetInfo, rows: Range<Int>, values: RowStorage, preview: [[Float]]) {
        self.info = info; self.rows = rows; self.storage = values; self.preview = preview
    }
    deinit { storage.deallocate() }

    /// Copies example `row` (a global index this rank holds) to `out` (d values).
    public func copyRow(_ row: Int, to out: UnsafeMutablePointer<Float>) {
        out.update(from: storage.base + (row - rows.lowerBound) * d, count: d)
    }

    /// Calls `body` with this rank's examples `range` (global indices it holds), (range.count, d).
    public func withRows<R>(_ range: Range<Int>, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        precondition(range.isEmpty || (rows.contains(range.lowerBound) && range.upperBound <= rows.upperBound))
        return try body(storage.base + (max(range.lowerBound, rows.lowerBound) - rows.lowerBound) * d)
    }

    /// Rows `[lo, hi)` of N examples that rank `r` of `p` holds: contiguous, sizes differ by ≤ 1.
    public static func shardRange(examples n: Int, rank r: Int, size p: Int) -> Range<Int> {
        (n * r / p)..<(n * (r + 1) / p)
    }

    /// Reads this rank's shard (only its byte range of the file), checks it, holds out
    /// `holdOut`'s examples and normalizes it (`Normalization`): with statistics of the training
    /// examples of every rank, reduced in double, or with a trained run's (`.given`).
    public static func load(_ source: DataSource, imageShape: ImageShape?, comm: Communicator,
                            normalization: NormalizationPlan = .compute(.sheet),
                            holdOut: HeldOutSplit.Rule? = nil) throws -> DatasetShard {
        // Local part: every error here is made collective, so all ranks stop together.
        let (n, shape, dtype, rows, values, path) = try comm.collectively {
            () throws -> (Int, ImageShape, String, Range<Int>, RowStorage, String) in
            switch source {
            case .synthetic(let spec, let seed):
                try spec.check()
                let rows = try shardRows(examples: spec.examples, comm: comm, path: source.description)
                let values = try RowStorage(rows: rows.count, d: spec.shape.pixels, of: source.description, comm: comm)
                for (i, row) in rows.enumerated() {
                    spec.generate(row: row, seed: seed, into: values.base + i * spec.shape.pixels)
                }
                return (spec.examples, spec.shape, "<f4", rows, values, source.description)
            case .lfw(let root, let settings):
                let entries = try LFWTree.list(root, minFaces: settings.minFacesPerPerson)
                let shape = settings.imageShape
                let rows = try shardRows(examples: entries.count, comm: comm, path: root)
                let values = try RowStorage(rows: rows.count, d: shape.pixels, of: root, comm: comm)
                do {
                    for (i, row) in rows.enumerated() {
                        try LFWTree.load(root: root, entry: entries[row], settings: settings, into: values.base + i * shape.pixels)
                    }
                } catch {
                    values.deallocate()
                    throw error
                }
                return (entries.count, shape, "jpeg", rows, values, root)
            case .embedded, .npy: break
            }
            let path: String
            if case .npy(let p) = source { path = p } else { path = try DataSource.embeddedPath() }
            let reader = try NPYReader(path: path)
            let header = reader.header
            let shape = try resolveImageShape(header: header, given: imageShape, path: path)
            let rows = try shardRows(examples: header.rowCount, comm: comm, path: path)
            let values = try RowStorage(rows: rows.count, d: shape.pixels, of: path, comm: comm)
            do {
                try reader.readRows(rows, into: values.buffer)
                try checkFinite(values, rows: rows, d: shape.pixels, path: path)
            } catch {
                values.deallocate()
                throw error
            }
            return (header.rowCount, shape, header.element.rawValue, rows, values, path)
        }
        let d = shape.pixels

        // The first examples, as loaded, for the dataset mosaic: gathered on rank 0.
        let firstRows = rows.clamped(to: 0..<previewCount)
        let local = Array(UnsafeBufferPointer(start: values.base + (firstRows.lowerBound - rows.lowerBound) * d, count: firstRows.count * d))
        let gathered = try gatherFirstRows(min(previewCount, n), width: d, local: local, examples: n, comm: comm)
        let preview = (0..<(gathered.count / d)).map { Array(gathered[($0 * d)..<(($0 + 1) * d)]) }
        // Fingerprint of the raw pixels, summed over all rows of all ranks.
        let fingerprint = try comm.allreduce(rowHashSum(values, rows: rows, d: d), op: .sum)

        let info = DatasetInfo(source: source.description, examples: n, imageShape: shape, dtype: dtype, std: 1,
                               fingerprint: String(fingerprint, radix: 16).leftPadded(to: 16))
        let shard = DatasetShard(info: info, rows: rows, values: values, preview: preview)
        try shard.normalize(normalization, holdOut: holdOut, path: path, comm: comm)
        return shard
    }

    /// Holds out `holdOut`'s examples (if any), then normalizes this rank's examples in place:
    /// with `plan`'s statistics, or with statistics of the training examples of every rank.
    private func normalize(_ plan: NormalizationPlan, holdOut: HeldOutSplit.Rule?, path: String, comm: Communicator) throws {
        let n = info.examples
        split = try holdOut.map { try HeldOutSplit(examples: n, rule: $0) }
        let chosen: Normalization
        switch plan {
        case .given(let given, let mismatch):
            guard given.mean.count == d else {
                throw UserError(mismatch?(d) ?? "\(path): examples have D = \(d) values, but the model takes D = \(given.mean.count)")
            }
            chosen = given
        case .compute(let kind):
            chosen = try Normalization.compute(kind, values: storage.base, rows: rows, d: d, n: trainingCount,
                                               excluded: split?.heldOut ?? [], comm: comm, path: path)
        }
        // Local, but a unit-norm example may be all zeros on one rank only.
        exampleFactors = try comm.collectively {
            try chosen.apply(to: storage.base, count: rows.count, d: d, first: rows.lowerBound, path: path)
        }
        normalization = chosen
        info.std = chosen.scale
    }

    /// Example `row` (a global index this rank holds) of a model's output y (d values, in
    /// normalized units, `offset` added first) back in the data's own units.
    public func denormalize(_ y: UnsafeMutablePointer<Float>, row: Int, offset: [Float]) {
        normalization.undo(y, d: d, offset: offset, factor: exampleFactors.isEmpty ? 1 : exampleFactors[row - rows.lowerBound])
    }

    /// Rows 0..<k of a per-example quantity (`width` values each) spread over the ranks'
    /// shards, gathered in order on rank 0 (empty elsewhere). `local` holds this rank's rows
    /// of 0..<k, which may be none; k ≤ n.
    public static func gatherFirstRows<T: BinaryFloatingPoint>(_ k: Int, width: Int, local: [T], examples n: Int,
                                                                comm: Communicator) throws -> [T] {
        precondition(k <= n, "gatherFirstRows: \(k) rows of \(n) examples")
        let counts = (0..<comm.size).map {
            shardRange(examples: n, rank: $0, size: comm.size).clamped(to: 0..<k).count * width
        }
        return try comm.gather(local, counts: counts, root: 0)
    }

    static func shardRows(examples n: Int, comm: Communicator, path: String) throws -> Range<Int> {
        guard n >= comm.size else {
            throw UserError("\(path): \(n) examples cannot be shared by \(comm.size) ranks (need at least one each)")
        }
        return shardRange(examples: n, rank: comm.rank, size: comm.size)
    }

    static func resolveImageShape(header: NPYHeader, given: ImageShape?, path: String) throws -> ImageShape {
        switch header.shape.count {
        case 3:
            let shape = ImageShape(height: header.shape[1], width: header.shape[2])
            if let given, given != shape {
                throw UserError("\(path): images are \(shape), but ⟨image-shape⟩ says \(given)")
            }
            guard try shape.checkedPixels(naming: "\(path): the image shape \(shape)") > 0 else { throw UserError("\(path): images have no pixels (shape \(header.shape))") }
            return shape
        case 2:
            let dims = header.shape[1]
            guard let given else {
                throw UserError("\(path): data is N×D (\(header.shape[0])×\(dims)); pass ⟨image-shape⟩ HxW with H·W = \(dims)")
            }
            let pixels = try given.checkedPixels(naming: "⟨image-shape⟩ \(given)")
            guard pixels == dims else {
                throw UserError("\(path): ⟨image-shape⟩ \(given) has \(pixels) pixels, but each row has \(dims)")
            }
            return given
        default:
            throw UserError("\(path): expected an N×H×W or N×D array, got shape \(header.shape)")
        }
    }

    static func checkFinite(_ values: RowStorage, rows: Range<Int>, d: Int, path: String) throws {
        for i in 0..<rows.count {
            let row = values.base + i * d
            for k in 0..<d where !row[k].isFinite {
                let what = row[k].isNaN ? "NaN" : "an infinite value"
                throw UserError("\(path): example \(rows.lowerBound + i) (row \(rows.lowerBound + i)) holds \(what) at pixel \(k)")
            }
        }
    }

    static func rowHashSum(_ values: RowStorage, rows: Range<Int>, d: Int) -> UInt64 {
        var sum: UInt64 = 0
        for i in 0..<rows.count {
            var hash = FNV1a.offset ^ (UInt64(rows.lowerBound + i) &* 0x9E37_79B9_7F4A_7C15)
            let row = values.base + i * d
            // One 32-bit word per step (not per byte): four times faster over the whole dataset.
            for k in 0..<d { hash = (hash ^ UInt64(row[k].bitPattern)) &* FNV1a.prime }
            sum &+= hash
        }
        return sum
    }
}

extension String {
    public func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
