import Foundation

/// `aetrain export RUN --format saelens`: the run as a SAELens `standard` SAE
/// (`SAE.load_from_disk(DIR)`): cfg.json and sae_weights.safetensors with
///
///     W_enc (D, h)   b_enc (h)   W_dec (h, D)   b_dec (D)   float32
///
/// SAELens computes z = relu(x W_enc + b_enc) (with `apply_b_dec_to_input` false) and
/// x̂ = z W_dec + b_dec on raw inputs. A run normalized with dataset constants (sheet, center,
/// none: x_n = (x − μ)/σ, with μ = 0 and σ = 1 where the kind has none) has them folded into
/// the weights, with `normalize_activations` "none":
///
///     z = relu(x_n V + b) = relu(x (V/σ) + (b − (μ/σ) V))    W_enc = V/σ,  b_enc = b − (μ/σ)·V
///     x̂ = (z W + a)·σ + μ                                     W_dec = W·σ,  b_dec = a·σ + μ
///
/// unit-norm's factor √d/‖x‖ is each example's own and folds into no weight. It is SAELens's
/// `constant_norm_rescale`, which scales x by √d_in/‖x‖ before the encoder and divides the
/// decoder's output by the same: the weights are exported as trained, with that setting, and the
/// exported SAE still takes raw inputs and returns raw reconstructions.
public enum SAELensExport {
    public static let configFile = "cfg.json", weightsFile = "sae_weights.safetensors"

    /// The four tensors, computed in double and rounded once.
    public static func tensors(_ model: TrainedAutoencoder) -> [(name: String, shape: [Int], values: [Float])] {
        let d = model.shape.d, h = model.shape.h, w = model.weights
        let n = model.normalization
        let mu = n.isAffine ? n.mean : [Double](repeating: 0, count: d), sigma = n.isAffine ? n.scale : 1
        var wEnc = [Float](repeating: 0, count: d * h), bEnc = [Double](w.b.map(Double.init))
        for k in 0..<d {
            for j in 0..<h {
                let v = Double(w.V[k * h + j])
                wEnc[k * h + j] = Float(v / sigma)
                bEnc[j] -= mu[k] / sigma * v
            }
        }
        let wDec = w.W.map { Float(Double($0) * sigma) }
        let bDec = (0..<d).map { Float(Double(w.a[$0]) * sigma + mu[$0]) }
        return [("W_enc", [d, h], wEnc), ("b_enc", [h], bEnc.map(Float.init)), ("W_dec", [h, d], wDec), ("b_dec", [d], bDec)]
    }

    /// cfg.json as SAELens's `SAEConfig.to_dict()` writes it for a `StandardSAE`: the config's
    /// fields, `metadata` (free-form: SAELens fills what is missing with None) and `architecture`.
    public static func config(_ model: TrainedAutoencoder) throws -> Data {
        let object: [String: Any] = [
            "architecture": "standard",
            "d_in": model.shape.d,
            "d_sae": model.shape.h,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": false,
            "normalize_activations": normalizeActivations(model),
            "reshape_activations": "none",
            "metadata": [
                "model_name": NSNull(),
                "hook_name": NSNull(),
                "dataset_path": model.config.dataset.source,
                "aetrain_run": model.directory.path,
                "aetrain_normalization": model.normalization.kind.rawValue,
                "aetrain_standardization": model.normalization.isAffine
                    ? "folded into the weights: inputs and reconstructions are in the data's own units"
                    : "unit-norm is normalize_activations constant_norm_rescale: inputs and reconstructions are in the data's own units",
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// SAELens's `normalize_activations`: what remains to do at run time.
    static func normalizeActivations(_ model: TrainedAutoencoder) -> String {
        model.normalization.isAffine ? "none" : "constant_norm_rescale"
    }

    /// Collective: reads the run, and rank 0 writes `directory`/cfg.json and
    /// sae_weights.safetensors, as one set (`FileSet`). `directory` is new, empty, or a previous export,
    /// which only `overwrite` replaces. `fromCheckpoint`: the run's newest complete checkpoint
    /// instead of its final files (`TrainedAutoencoder`). Returns the files written.
    public static func write(run: String, to directory: String, overwrite: Bool, fromCheckpoint: Bool = false,
                             comm: Communicator) throws -> [URL] {
        try comm.collectively {
            let model = try TrainedAutoencoder.load(run, for: "export", fromCheckpoint: fromCheckpoint)
            guard comm.isRoot else { return [] }
            let out = URL(fileURLWithPath: directory)
            try InputOutputPaths.check(output: out, setting: "out", runs: [model.directory])
            try InputOutputPaths.check(output: out, setting: "out", inputs: model.inputs)
            let files = [out.appendingPathComponent(configFile), out.appendingPathComponent(weightsFile)]
            for file in files { try InputOutputPaths.check(output: file, setting: "out", inputs: model.inputs) }
            try checkDestination(out, overwrite: overwrite)
            try WritablePlace.checkDirectory(out.deletingLastPathComponent(), setting: "out")
            // Both files appear together or not at all (`FileSet`): never new weights beside an
            // old cfg.json.
            try FileSet.install([(weightsFile, SafeTensors.encode(tensors(model), metadata: ["format": "pt"])),
                                 (configFile, try config(model))], as: out)
            return files
        }
    }

    /// Refuses a directory holding anything but an export's two files (as train refuses a
    /// directory that holds another run), and a previous export unless `overwrite`.
    static func checkDestination(_ out: URL, overwrite: Bool) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: out.path, isDirectory: &isDir) else { return }  // made by `FileSet`
        guard isDir.boolValue else { throw UserError("⟨out⟩ \(out.relativePath): exists and is not a directory") }
        let held: [String]
        do { held = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() } catch {
            throw UserError("⟨out⟩ \(out.relativePath): cannot list the directory: \(error.localizedDescription)")
        }
        // A killed export's temporary files (`DurableFile`'s `.NAME.tmp-PID` of the two) are
        // leftovers, removed once the checks pass.
        let exportNames = [configFile, weightsFile]
        let leftovers = held.filter { RunDirectoryClaim.temporaryTarget($0).map(exportNames.contains) ?? false }
        let others = held.filter { !exportNames.contains($0) && !leftovers.contains($0) }
        guard others.isEmpty else {
            let names = others.prefix(4).joined(separator: ", ") + (others.count > 4 ? ", …" : "")
            throw UserError("⟨out⟩ \(out.relativePath) holds files that are not a SAELens export (\(names)); "
                            + "choose a new or empty directory")
        }
        let export = held.filter(exportNames.contains)
        guard export.isEmpty || overwrite else {
            throw UserError("⟨out⟩ \(out.relativePath) holds a SAELens export (\(export.joined(separator: ", "))); "
                            + "replace it with ⟨overwrite⟩ or choose another directory")
        }
        for name in leftovers { try? FileManager.default.removeItem(at: out.appendingPathComponent(name)) }
    }
}
