import Foundation

/// `aetrain export RUN --format saelens`: the run as a SAELens SAE (`SAE.load_from_disk(DIR)`):
/// cfg.json and sae_weights.safetensors with
///
///     W_enc (D, h)   b_enc (h)   W_dec (h, D)   b_dec (D)   [threshold (h)]   float32
///
/// SAELens computes π = x W_enc + b_enc (with `apply_b_dec_to_input` false), codes by its
/// `architecture`, and x̂ = z W_dec + b_dec on raw inputs. Each `InferenceRule` is the
/// architecture SAELens would load it as:
///
///     relu       standard   z = relu(π)
///     topk       topk       z = relu(TopK_k(π)), k in cfg.json, rescale_acts_by_decoder_norm false
///     batchtopk  jumprelu   z = relu(π)·1[π > θ_j], θ_j = θ for every latent (as SAELens saves
///                           its own BatchTopK SAEs); the same codes as relu(π)·1[relu(π) > θ]
///     jumprelu   jumprelu   the same codes as π·H(π − θ_j) where θ_j ≥ 0: a run with a negative
///                           threshold is refused (SAELens's JumpReLU zeroes π ≤ 0)
///
/// The thresholds apply to π, which the folding below leaves unchanged. A run normalized with dataset constants (sheet, center,
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

    /// SAELens's `metadata.model_name` and `hook_name` (`--model-name`, `--hook-name`): what the
    /// vectors are activations of, for tools that hook the SAE into a model (nil: null).
    public struct Names: Equatable, Sendable {
        public var modelName: String?
        public var hookName: String?
        public init(modelName: String? = nil, hookName: String? = nil) { self.modelName = modelName; self.hookName = hookName }
    }

    /// The format of cfg.json followed here: SAELens 6 (an older or absent version makes SAELens
    /// convert the config as a pre-6.0 one, which drops `metadata`).
    public static let saeLensVersion = "6.18.0"

    /// The SAELens architecture of a rule.
    static func architecture(_ rule: InferenceRule) -> String {
        switch rule {
        case .relu: "standard"
        case .topk: "topk"
        case .batchtopk, .jumprelu: "jumprelu"
        }
    }

    /// The tensors, computed in double and rounded once: the four weights, and the thresholds
    /// of batchtopk and jumprelu.
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
        let weights = [("W_enc", [d, h], wEnc), ("b_enc", [h], bEnc.map(Float.init)), ("W_dec", [h, d], wDec), ("b_dec", [d], bDec)]
        return weights + (model.rule.thresholds(h: h).map { [("threshold", [h], $0)] } ?? [])
    }

    /// A jumprelu run whose codes SAELens would not reproduce is refused: SAELens's JumpReLU
    /// keeps relu(π) where π > θ_j, ours π, which differ where θ_j < π < 0.
    static func checkExportable(_ model: TrainedAutoencoder) throws {
        guard case .jumprelu(let theta) = model.rule else { return }
        let negative = theta.filter { $0 < 0 }
        guard let lowest = negative.min() else { return }
        throw UserError("\(model.directory.relativePath): \(negative.count) of \(theta.count) jumprelu thresholds are negative (lowest \(lowest)); "
                        + "SAELens's JumpReLU zeroes negative pre-activations, so its codes would differ from encode's")
    }

    /// cfg.json as SAELens's `SAEConfig.to_dict()` writes it for the rule's architecture: the
    /// config's fields (with `k` and `rescale_acts_by_decoder_norm` for topk), `metadata`
    /// (free-form: SAELens fills what is missing with None) and `architecture`. No absolute
    /// path: the run and the data are named by their last path component.
    public static func config(_ model: TrainedAutoencoder, names: Names = Names()) throws -> Data {
        var object: [String: Any] = [
            "architecture": architecture(model.rule),
            "d_in": model.shape.d,
            "d_sae": model.shape.h,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": false,
            "normalize_activations": normalizeActivations(model),
            "reshape_activations": "none",
            "metadata": [
                "sae_lens_version": saeLensVersion,
                "sae_lens_training_version": NSNull(),
                "model_name": names.modelName ?? NSNull(),
                "hook_name": names.hookName ?? NSNull(),
                "dataset_path": lastComponent(model.config.dataset.source),
                "aetrain_run": model.directory.standardizedFileURL.lastPathComponent,
                "aetrain_architecture": model.rule.activation.rawValue,
                "aetrain_normalization": model.normalization.kind.rawValue,
                "aetrain_standardization": model.normalization.isAffine
                    ? "folded into the weights: inputs and reconstructions are in the data's own units"
                    : "unit-norm is normalize_activations constant_norm_rescale: inputs and reconstructions are in the data's own units",
            ] as [String: Any],
        ]
        if case .topk(let k) = model.rule {
            object["k"] = k
            object["rescale_acts_by_decoder_norm"] = false
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// A data source without its directories: `/data/x.npy` → `x.npy` (`embedded:…`, `synthetic:…` as they are).
    static func lastComponent(_ source: String) -> String {
        source.contains("/") ? URL(fileURLWithPath: source).lastPathComponent : source
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
                             names: Names = Names(), comm: Communicator) throws -> [URL] {
        try comm.collectively {
            let model = try TrainedAutoencoder.load(run, for: "export", fromCheckpoint: fromCheckpoint)
            guard comm.isRoot else { return [] }
            try checkExportable(model)
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
                                 (configFile, try config(model, names: names))], as: out)
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
