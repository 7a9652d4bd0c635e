import Foundation

/// How `encode` writes the codes.
public enum CodeFormat: String, CaseIterable, Sendable {
    /// (N, h) float32 `.npy`.
    case npy
    /// One F32 tensor "codes" (N, h); with `sparse`, the CSR tensors instead.
    case safetensors
}

/// `aetrain encode`: a trained run, the data to encode and where the codes go.
public struct EncodePlan {
    public var run: String
    public var data = DataPlan()
    /// The codes file.
    public var out: String
    /// x̂ in the data's own units, (N, d), in the same format as the codes (tensor "reconstruction").
    public var reconstruct: String?
    public var format: CodeFormat = .npy
    /// CSR arrays `indptr` (N+1) I64, `indices` (nnz) I32, `values` (nnz) F32 in one safetensors file.
    public var sparse = false
    /// Replace an existing ⟨out⟩ or ⟨reconstruct⟩ file (otherwise refused).
    public var overwrite = false
    /// Read the run's newest complete checkpoint instead of its final files (⟨checkpoint⟩ latest).
    public var fromCheckpoint = false
    /// Encode only the run's held-out examples (config.json `heldOutRows`, ascending), of the
    /// run's own data unless ⟨data⟩ names it elsewhere.
    public var heldOut = false
    /// The products' arithmetic (`Precision`): fp32 (default) or bf16.
    public var precision: Precision = .fp32

    public init(run: String, out: String) { self.run = run; self.out = out }

    /// The rules between flags, before any work.
    public func validate() throws {
        if sparse && format == .npy { throw UserError("⟨sparse⟩ writes a safetensors file; use ⟨format⟩ safetensors or leave ⟨format⟩ out") }
        for (setting, path) in [("out", out), ("reconstruct", reconstruct)] {
            guard let path else { continue }
            try checkExtension(path, setting: setting)
        }
        if let reconstruct, InputOutputPaths.conflict(output: URL(fileURLWithPath: reconstruct), input: URL(fileURLWithPath: out)) != nil {
            throw UserError("⟨reconstruct⟩ \(reconstruct) and ⟨out⟩ \(out) name the same file")
        }
    }

    /// A name ending in `.npy` or `.safetensors` must say what the file holds; other names take either.
    func checkExtension(_ path: String, setting: String) throws {
        switch (URL(fileURLWithPath: path).pathExtension.lowercased(), format) {
        case ("npy", .safetensors):
            let why = sparse ? "⟨sparse⟩ writes safetensors" : "⟨format⟩ is safetensors"
            throw UserError("⟨\(setting)⟩ \(path) is named .npy but \(why); name it .safetensors")
        case ("safetensors", .npy):
            throw UserError("⟨\(setting)⟩ \(path) is named .safetensors but ⟨format⟩ is npy; use ⟨format⟩ safetensors or name it .npy")
        default:
            return
        }
    }
}

/// What `encode` wrote.
public struct EncodeSummary: Sendable {
    public var examples: Int
    public var d: Int
    public var hidden: Int
    /// Nonzero codes over all examples.
    public var nonzero: Int
    /// Bytes of the codes file, and of the dense (N, h) float32 codes.
    public var bytes: Int
    public var denseBytes: Int
}

/// Encodes a dataset with a trained sparse autoencoder, z by the run's `InferenceRule` from
/// π = x_n V + b with x_n the data normalized with the run's statistics (`Normalization`), on
/// every rank's shard (all its examples, or its held-out ones). Rank 0 writes the rows in
/// order: the ranks' codes are gathered in chunks of bounded size (at most `chunkBytes`
/// on rank 0 per collective), and rank 0 writes each rank's piece with pwrite at its row's
/// offset, so no rank ever holds the whole output.
public enum Encoding {
    static let chunkBytes = 32 << 20

    public static func run(_ plan: EncodePlan, comm: Communicator) throws -> EncodeSummary {
        try plan.validate()
        try comm.collectively { try plan.precision.checkSupported() }
        let model = try comm.collectively { try TrainedAutoencoder.load(plan.run, for: "encode", fromCheckpoint: plan.fromCheckpoint) }
        let heldOut = try comm.collectively { try plan.heldOut ? heldOutRows(of: model) : nil }
        let data = plan.heldOut && plan.data.argument == nil ? model.recordedData : plan.data
        let source = try comm.collectively { () throws -> DataSource in
            let source = try DataSource(argument: data.argument, seed: model.config.settings.seed, lfw: data.lfw ?? LFWSettings())
            if comm.isRoot { try checkPaths(plan, model: model, source: source) }
            return source
        }
        let imageShape = try comm.collectively { try resolveImageShape(plan, data: data, source: source, model: model) }
        let shard = try DatasetShard.load(source, imageShape: imageShape, comm: comm, normalization: .given(model.normalization))
        if heldOut != nil { try checkRunData(shard, model: model, source: source) }
        let rows = heldOut.map { EncodedRows(only: $0, of: shard.info.examples, ranks: comm.size) }
            ?? EncodedRows(all: shard.info.examples, ranks: comm.size)
        let n = rows.count, d = model.shape.d, h = model.shape.h

        var files: [OffsetFile] = []
        defer { for f in files { f.abandon() } }
        try comm.collectively {
            guard comm.isRoot else { return }
            for path in [plan.out, plan.reconstruct].compactMap({ $0 }) {
                FileSet.removeLeftovers(beside: URL(fileURLWithPath: path))  // of a killed encode
                files.append(try OffsetFile(URL(fileURLWithPath: path)))
            }
        }
        let encoder = ShardEncoder(model: model, shard: shard, rows: rows, precision: plan.precision)
        var summary = EncodeSummary(examples: n, d: d, hidden: h, nonzero: 0, bytes: 0, denseBytes: n * h * 4)
        if plan.sparse {
            (summary.nonzero, summary.bytes) = try writeSparse(encoder, to: files.first, comm: comm)
        } else {
            let (header, offset) = denseHeader(plan.format, name: "codes", rows: n, width: h)
            files.first?.write(header, at: 0)
            summary.nonzero = try writeDense(width: h, start: offset, rows: rows, to: files.first, comm: comm) { rows, out in
                encoder.codes(rows, into: out)
            }
            summary.bytes = offset + n * h * 4
        }
        if plan.reconstruct != nil {
            let (header, offset) = denseHeader(plan.format, name: "reconstruction", rows: n, width: d)
            files.last?.write(header, at: 0)
            _ = try writeDense(width: d, start: offset, rows: rows, to: files.last, comm: comm) { rows, out in
                encoder.reconstruction(rows, into: out)
            }
        }
        // The codes and the reconstruction as one set: neither replaces an old file before
        // both are complete (`FileSet.swap`).
        try comm.collectively {
            guard comm.isRoot else { return }
            try FileSet.swap(try files.map { (try $0.prepare(), $0.url) })
        }
        files = []
        return summary
    }

    /// Outputs never overwrite the run's files or the data, go into existing directories, and
    /// replace an existing file only with ⟨overwrite⟩.
    static func checkPaths(_ plan: EncodePlan, model: TrainedAutoencoder, source: DataSource) throws {
        var inputs = model.inputs
        switch source {
        case .npy(let path), .lfw(let path, _), .safetensors(let path, _): inputs.append(URL(fileURLWithPath: path))
        case .embedded, .synthetic: break
        }
        for (setting, path) in [("out", plan.out), ("reconstruct", plan.reconstruct)] {
            guard let path else { continue }
            let url = URL(fileURLWithPath: path)
            try InputOutputPaths.check(output: url, setting: setting, runs: [model.directory])
            try InputOutputPaths.check(output: url, setting: setting, inputs: inputs)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                throw UserError("⟨\(setting)⟩ \(path) is a directory; name a file")
            }
            let parent = url.deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
                throw UserError("⟨\(setting)⟩ \(path): the directory \(parent) does not exist")
            }
            // attributesOfItem does not follow a symbolic link: a dangling one is a file here too.
            if !plan.overwrite, (try? FileManager.default.attributesOfItem(atPath: path)) != nil {
                throw UserError("⟨\(setting)⟩ \(path) exists; replace it with ⟨overwrite⟩ or choose another name")
            }
        }
    }

    /// ⟨image-shape⟩ if given (encode writes no images: it only names the rows' length). An
    /// N×D file whose D differs from the model's is refused here, before any rank reads it;
    /// other data when it loads.
    static func resolveImageShape(_ plan: EncodePlan, data: DataPlan, source: DataSource, model: TrainedAutoencoder) throws -> ImageShape? {
        if let text = data.imageShape {
            guard let shape = ImageShape(parsing: text) else { throw UserError("⟨image-shape⟩ \(text): expected HxW") }
            return shape
        }
        guard let file = try source.openFile(), file.shape.count == 2 else { return nil }
        guard file.shape[1] == model.shape.d else {
            throw UserError("\(source): examples have D = \(file.shape[1]) values, but the model takes D = \(model.shape.d)")
        }
        return nil
    }

    /// The header of one dense F32 (rows, width) tensor, and where its data starts.
    static func denseHeader(_ format: CodeFormat, name: String, rows: Int, width: Int) -> (Data, Int) {
        switch format {
        case .npy:
            // As NPYWriter's: magic, version 1.0, length, the dict padded so that data starts at a multiple of 64.
            var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(width)), }"
            dict += String(repeating: " ", count: (64 - (10 + dict.utf8.count + 1) % 64) % 64) + "\n"
            var header = Data(NPYHeader.magic + [1, 0])
            header.append(contentsOf: [UInt8(dict.utf8.count & 0xff), UInt8(dict.utf8.count >> 8)])
            header.append(contentsOf: Array(dict.utf8))
            return (header, header.count)
        case .safetensors:
            let (bytes, offsets) = SafeTensors.header([SafeTensors.Entry(name, .F32, [rows, width])])
            return (bytes, offsets[0])
        }
    }

    /// The run's held-out examples (`--held-out`); refused where the run has none, or where
    /// config.json's list is not ascending or not within the run's data.
    static func heldOutRows(of model: TrainedAutoencoder) throws -> [Int] {
        let run = model.directory.relativePath, n = model.config.dataset.examples
        guard let rows = model.config.heldOutRows, !rows.isEmpty else {
            if let evalData = model.config.evalData {
                throw UserError("⟨held-out⟩: \(run) holds out no examples (it was evaluated on ⟨eval-data⟩ \(evalData)); encode that data without ⟨held-out⟩")
            }
            throw UserError("⟨held-out⟩: \(run) holds out no examples (it was trained without ⟨eval-fraction⟩); encode its data without ⟨held-out⟩")
        }
        guard zip(rows, rows.dropFirst()).allSatisfy({ $0 < $1 }), let first = rows.first, let last = rows.last, first >= 0, last < n else {
            throw UserError("\(run)/config.json: heldOutRows are not ascending indices of its \(n) examples")
        }
        return rows
    }

    /// `--held-out` encodes the examples the run held out of its data: ⟨data⟩, if given, must
    /// be that data (same N and fingerprint).
    static func checkRunData(_ shard: DatasetShard, model: TrainedAutoencoder, source: DataSource) throws {
        let recorded = model.config.dataset
        guard shard.info.examples == recorded.examples, shard.info.fingerprint == recorded.fingerprint else {
            throw UserError("⟨held-out⟩: \(source) is not the data \(model.directory.relativePath) was trained on "
                            + "(\(shard.info.examples) examples, fingerprint \(shard.info.fingerprint); the run's: \(recorded.examples), \(recorded.fingerprint))")
        }
    }

    /// Row pieces of every rank for chunk `c`: rank r's output rows [lo + c·k, lo + (c+1)·k) ∩ its range.
    static func pieces(chunk c: Int, rowsPerChunk k: Int, rows: EncodedRows) -> [Range<Int>] {
        rows.ranges.map { s in
            let lo = min(s.upperBound, s.lowerBound + c * k)
            return lo..<min(s.upperBound, lo + k)
        }
    }

    /// Collective. Every rank computes `width` floats per output row of its range with
    /// `produce`, a chunk at a time; rank 0 writes row i at `start + i·width·4`. Returns the
    /// nonzero count.
    static func writeDense(width: Int, start: Int, rows: EncodedRows, to file: OffsetFile?, comm: Communicator,
                           produce: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) throws -> Int {
        let k = max(1, chunkBytes / max(1, width * 4 * comm.size))
        let largest = rows.ranges.map(\.count).max() ?? 0
        let chunks = (largest + k - 1) / k
        var local = [Float](repeating: 0, count: k * width)
        var nonzero = 0
        for c in 0..<chunks {
            let all = pieces(chunk: c, rowsPerChunk: k, rows: rows)
            let mine = all[comm.rank]
            local.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress, !mine.isEmpty else { return }  // k·width ≥ 1 element: never nil
                produce(mine, base)
                for i in 0..<(mine.count * width) where base[i] != 0 { nonzero += 1 }
            }
            let gathered = try comm.gather(Array(local[0..<(mine.count * width)]), counts: all.map { $0.count * width }, root: 0)
            guard let file else { continue }
            var at = 0
            gathered.withUnsafeBytes { bytes in
                for piece in all {
                    let count = piece.count * width * 4
                    file.write(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count)]), at: start + piece.lowerBound * width * 4)
                    at += count
                }
            }
        }
        var total = [Double(nonzero)]
        try comm.allreduceSum(&total)
        return Int(total[0])
    }
}

