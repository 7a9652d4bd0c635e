import Foundation

/// A finished sparse autoencoder run, as `encode` and `export` read it: its weights and the
/// standardization its data went through, x_n = (x − μ) / σ.
///
///     V (d, h), W (h, d), b (h), a (d)   the weights (V.npy, W.npy, b.npy, a.npy)
///     μ (d)                              mean.npy, the training data's per-pixel mean
///     σ                                  config.json's dataset.std
public struct TrainedAutoencoder {
    public let directory: URL
    public let config: RunConfig
    public let weights: ModelWeights
    public let mean: [Double]  // (d)
    public let std: Double
    public var shape: ModelShape { weights.shape }
    public var standardization: (mean: [Double], std: Double) { (mean, std) }

    /// The files of the run that encoding and export read.
    public static let fileNames = ["config.json", "mean.npy"] + ModelWeights.fileNames
    public var inputs: [URL] { Self.fileNames.map { directory.appendingPathComponent($0) } }

    /// Reads the run in `path`; `purpose` ("encode", "export") completes the error messages.
    public static func load(_ path: String, for purpose: String) throws -> TrainedAutoencoder {
        let directory = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw UserError("\(path): no such run directory (name a directory written by `aetrain train --out`)")
        }
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
        let meanReader = try NPYReader(path: directory.appendingPathComponent("mean.npy").path)
        let mean = try meanReader.readAll().map(Double.init)
        guard meanReader.header.shape == [weights.shape.d] else {
            throw UserError("\(path)/mean.npy: shape \(meanReader.header.shape), but the model has d = \(weights.shape.d)")
        }
        let std = config.dataset.std
        guard std > 0, std.isFinite, mean.allSatisfy(\.isFinite) else {
            throw UserError("\(path): the recorded standardization is not usable (std \(std))")
        }
        return TrainedAutoencoder(directory: directory, config: config, weights: weights, mean: mean, std: std)
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
