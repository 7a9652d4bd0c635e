import Foundation

/// A finished sparse autoencoder run, as `encode` and `export` read it: its weights, the
/// normalization its data went through (`Normalization`) and what its codes are
/// (`InferenceRule`).
///
///     V (d, h), W (h, d), b (h), a (d)   the weights (V.npy, W.npy, b.npy, a.npy)
///     θ (h)                              threshold.npy (batchtopk, jumprelu)
///     kind, σ                            config.json's `normalization` (older runs: sheet, dataset.std)
///     μ (d)                              mean.npy
public struct TrainedAutoencoder {
    public let directory: URL
    public let config: RunConfig
    public let weights: ModelWeights
    public let normalization: Normalization
    public let rule: InferenceRule
    /// Held while the run is read: no session trains it meanwhile.
    let lock: RunReadLock?
    public var shape: ModelShape { weights.shape }
    /// The data the run was trained on, as its config.json recorded `--data` (nil: the embedded faces).
    public var recordedData: DataPlan { DataPlan(argument: config.data, lfw: config.lfw, imageShape: config.imageShape) }

    /// The files of the run that encoding and export read.
    public static let fileNames = ["config.json", "mean.npy"] + ModelWeights.fileNames
    public var inputs: [URL] {
        (Self.fileNames + (rule.hasThresholds ? [InferenceRule.thresholdFile] : [])).map { directory.appendingPathComponent($0) }
    }

    /// Reads the run in `path`; `purpose` ("encode", "export") completes the error messages.
    public static func load(_ path: String, for purpose: String) throws -> TrainedAutoencoder {
        let directory = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw UserError("\(path): no such run directory (name a directory written by `aetrain train --out`)")
        }
        let lock = try RunReadLock.take(directory, for: purpose)
        let configURL = directory.appendingPathComponent("config.json")
        guard let bytes = FileManager.default.contents(atPath: configURL.path) else {
            throw UserError("\(path): not a run directory (it has no config.json); name a directory written by `aetrain train --out`")
        }
        let config: RunConfig
        do { config = try JSONDecoder().decode(RunConfig.self, from: bytes) } catch {
            throw UserError("\(path)/config.json: not a run's config.json (\(Self.reason(error)))")
        }
        let model = config.model ?? .sparseAutoencoder
        guard model == .sparseAutoencoder else {
            throw UserError("\(path) is a \(model.rawValue) run; only sparse-autoencoder runs can \(purpose)")
        }
        for name in fileNames where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            throw UserError("\(path): \(name) is missing (the run has not finished, or its files were removed)")
        }
        let weights = try ModelWeights.load(from: directory)
        let normalization = try Normalization.recorded(in: directory, config: config, d: weights.shape.d)
        let rule = try InferenceRule.recorded(in: directory, architecture: config.settings.architecture, h: weights.shape.h)
        return TrainedAutoencoder(directory: directory, config: config, weights: weights, normalization: normalization, rule: rule, lock: lock)
    }

    static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "no \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            context.codingPath.map(\.stringValue).joined(separator: ".") + ": " + context.debugDescription
        default: String(describing: error)
        }
    }
}
