import Foundation

/// Where the training examples come from.
public enum DataSource: Equatable, Sendable, CustomStringConvertible {
    /// The 100 LFW face crops (25×25) shipped with aetrain (see Resources/make_lfw_faces.py).
    case embedded
    /// A `.npy` file: N×D, or N×H×W images (float32, float64, float16 or uint8).
    case npy(path: String)
    /// One tensor of a `.safetensors` file (`FILE.safetensors:NAME`, or the only tensor; F32,
    /// F16 or BF16), N×D.
    case safetensors(path: String, tensor: String?)
    /// Generated images, `synthetic:N,H,W`, deterministic in the seed.
    case synthetic(SyntheticSpec, seed: UInt64)
    /// LFW's JPEG tree (`DIR/Person_Name/Person_Name_0001.jpg`), preprocessed as scikit-learn does.
    case lfw(path: String, settings: LFWSettings)

    /// `--data` as the user gave it: nothing or `embedded` means the embedded faces, a
    /// directory is an LFW tree, `synthetic:N,H,W` is generated, `F.safetensors` or
    /// `F.safetensors:NAME` is a safetensors file (`F.safetensors` when a file has the whole
    /// name), anything else is a `.npy` file (a file named `embedded` is reached as `./embedded`).
    public init(argument: String?, seed: UInt64, lfw: LFWSettings = LFWSettings()) throws {
        guard let argument, argument != "embedded" else { self = .embedded; return }
        var isDir: ObjCBool = false
        if let spec = try SyntheticSpec.parse(argument) {
            self = .synthetic(spec, seed: seed)
        } else if FileManager.default.fileExists(atPath: argument, isDirectory: &isDir), isDir.boolValue {
            try lfw.validate()
            self = .lfw(path: argument, settings: lfw)
        } else if let (path, tensor) = Self.safetensorsPath(argument) {
            self = .safetensors(path: path, tensor: tensor)
        } else {
            self = .npy(path: argument)
        }
    }

    public var description: String {
        switch self {
        case .embedded: "embedded:lfw_faces_25x25"
        case .npy(let path): path
        case .safetensors(let path, let tensor): tensor.map { "\(path):\($0)" } ?? path
        case .synthetic(let spec, _): "synthetic:\(spec.examples),\(spec.shape.height),\(spec.shape.width)"
        case .lfw(let path, _): path
        }
    }

    /// `F.safetensors` → (F.safetensors, nil); `F.safetensors:NAME` → (F.safetensors, NAME)
    /// unless a file has the whole name; nil for any other name.
    static func safetensorsPath(_ argument: String) -> (String, String?)? {
        if argument.hasSuffix(".safetensors") || FileManager.default.fileExists(atPath: argument) {
            return argument.hasSuffix(".safetensors") ? (argument, nil) : nil
        }
        guard let range = argument.range(of: ".safetensors:", options: .backwards) else { return nil }
        return (String(argument[..<range.lowerBound]) + ".safetensors", String(argument[range.upperBound...]))
    }

    /// The file the examples are read from, open (nil for generated data and LFW trees).
    func openFile() throws -> ExampleFile? {
        switch self {
        case .embedded: try NPYReader(path: try DataSource.embeddedPath())
        case .npy(let path): try NPYReader(path: path)
        case .safetensors(let path, let tensor): try SafeTensorsReader(path: path, tensor: tensor)
        case .synthetic, .lfw: nil
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
    /// D, the values of one example.
    public var dimensions: Int
    /// The image the D values form; nil for plain N×D data (no image outputs).
    public var imageShape: ImageShape?
    public var dtype: String
    /// Standardization: x ← (x − mean_pixel) / std, std over all centred entries (numpy's X.std()).
    public var std: Double
    /// Order-independent hash of every example's pixels (before standardization) and its index,
    /// as 16 hex digits: the same whatever the number of ranks.
    public var fingerprint: String

    public init(source: String, examples: Int, layout: ExampleLayout, dtype: String, std: Double, fingerprint: String) {
        self.source = source; self.examples = examples; dimensions = layout.dimensions; imageShape = layout.imageShape
        self.dtype = dtype; self.std = std; self.fingerprint = fingerprint
    }

    /// "37x28 images" or "512-value vectors" (the banner's words).
    public var exampleDescription: String {
        imageShape.map { "\($0) images" } ?? "\(dimensions)-value vectors"
    }

    enum CodingKeys: String, CodingKey { case source, examples, dimensions, imageShape, dtype, std, fingerprint }

    /// Also reads config.json files written before `dimensions` existed (D from the image shape).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decode(String.self, forKey: .source)
        examples = try c.decode(Int.self, forKey: .examples)
        imageShape = try c.decodeIfPresent(ImageShape.self, forKey: .imageShape)
        guard let d = try c.decodeIfPresent(Int.self, forKey: .dimensions) ?? imageShape?.pixels else {
            throw DecodingError.keyNotFound(CodingKeys.dimensions, .init(codingPath: c.codingPath, debugDescription: "neither dimensions nor imageShape"))
        }
        dimensions = d
        dtype = try c.decode(String.self, forKey: .dtype)
        std = try c.decode(Double.self, forKey: .std)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
    }
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
    public var d: Int { info.dimensions }
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
        let (n, layout, dtype, rows, values, path) = try comm.collectively {
            () throws -> (Int, ExampleLayout, String, Range<Int>, RowStorage, String) in
            switch source {
            case .synthetic(let spec, let seed):
                try spec.check()
                let rows = try shardRows(examples: spec.examples, comm: comm, path: source.description)
                let values = try RowStorage(rows: rows.count, d: spec.shape.pixels, of: source.description, comm: comm)
                for (i, row) in rows.enumerated() {
                    spec.generate(row: row, seed: seed, into: values.base + i * spec.shape.pixels)
                }
                return (spec.examples, ExampleLayout(image: spec.shape), "<f4", rows, values, source.description)
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
                return (entries.count, ExampleLayout(image: shape), "jpeg", rows, values, root)
            case .embedded, .npy, .safetensors: break
            }
            guard let file = try source.openFile() else { preconditionFailure("\(source) has no file") }
            let path = source.description
            let layout = try ExampleLayout.resolve(shape: file.shape, given: imageShape,
                                                   threeDimensionalImages: file.threeDimensionalImages, path: path)
            let examples = file.shape[0]
            let rows = try shardRows(examples: examples, comm: comm, path: path)
            let values = try RowStorage(rows: rows.count, d: layout.dimensions, of: path, comm: comm)
            do {
                try file.readRows(rows, into: values.buffer)
                try checkFinite(values, rows: rows, d: layout.dimensions, path: path)
            } catch {
                values.deallocate()
                throw error
            }
            return (examples, layout, file.dtype, rows, values, path)
        }
        let d = layout.dimensions

        // The first examples, as loaded, for the dataset mosaic: gathered on rank 0.
        let firstRows = rows.clamped(to: 0..<previewCount)
        let local = Array(UnsafeBufferPointer(start: values.base + (firstRows.lowerBound - rows.lowerBound) * d, count: firstRows.count * d))
        let gathered = try gatherFirstRows(min(previewCount, n), width: d, local: local, examples: n, comm: comm)
        let preview = (0..<(gathered.count / d)).map { Array(gathered[($0 * d)..<(($0 + 1) * d)]) }
        // Fingerprint of the raw pixels, summed over all rows of all ranks.
        let fingerprint = try comm.allreduce(rowHashSum(values, rows: rows, d: d), op: .sum)

        let info = DatasetInfo(source: source.description, examples: n, layout: layout, dtype: dtype, std: 1,
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
            // One 32-bit word per step, not per byte: a quarter of the multiplications, over every example.
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
