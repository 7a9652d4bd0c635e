import Foundation

/// A finished sparse autoencoder run, as `encode` and `export` read it: its weights, the
/// normalization its data went through (`Normalization`) and what its codes are
/// (`InferenceRule`).
///
///     V (d, h), W (h, d), b (h), a (d)   the weights (V.npy, W.npy, b.npy, a.npy)
///     θ (h)                              threshold.npy (batchtopk, jumprelu)
///     kind, σ                            config.json's `normalization` (older runs: sheet, dataset.std)
///     μ (d)                              mean.npy
///
/// Or, with `fromCheckpoint` (⟨checkpoint⟩ latest), the newest complete checkpoint's θ and
/// normalization, which a run being trained writes whole under the final name (`DurableFile`):
/// readable without the run's lock, so while it trains.
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

    /// The checkpoint read (⟨checkpoint⟩ latest), nil for the final files.
    public let checkpoint: URL?

    /// The files of the run that encoding and export read.
    public static let fileNames = ["config.json", "mean.npy"] + ModelWeights.fileNames
    public var inputs: [URL] {
        (Self.fileNames + (rule.hasThresholds && checkpoint == nil ? [InferenceRule.thresholdFile] : [])).map { directory.appendingPathComponent($0) }
            + (checkpoint.map { [$0] } ?? [])
    }

    /// Reads the run in `path`; `purpose` ("encode", "export") completes the error messages.
    /// `fromCheckpoint`: the newest complete checkpoint instead of the final files.
    public static func load(_ path: String, for purpose: String, fromCheckpoint: Bool = false) throws -> TrainedAutoencoder {
        let directory = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw UserError("\(path): no such run directory (name a directory written by `aetrain train --out`)")
        }
        let lock = fromCheckpoint ? nil : try RunReadLock.take(directory, for: purpose)
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
        if fromCheckpoint { return try newestCheckpoint(directory, config: config) }
        for name in fileNames where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            throw UserError("\(path): \(name) is missing (the run has not finished, or its files were removed)")
        }
        let weights = try ModelWeights.load(from: directory)
        let normalization = try Normalization.recorded(in: directory, config: config, d: weights.shape.d)
        let rule = try InferenceRule.recorded(in: directory, architecture: config.settings.architecture, h: weights.shape.h)
        return TrainedAutoencoder(directory: directory, config: config, weights: weights, normalization: normalization, rule: rule,
                                  lock: lock, checkpoint: nil)
    }

    /// The weights of the newest checkpoint of this run that reads back whole. A run being
    /// trained may prune an older file between the listing and the read: the listing is
    /// taken again (a few times) before giving up.
    static func newestCheckpoint(_ directory: URL, config: RunConfig) throws -> TrainedAutoencoder {
        let folder = CheckpointFolder(run: directory)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let (checkpoint, file, _) = try folder.newestValid(runID: config.runID)
                let header = checkpoint.header, activation = config.settings.activation
                let layout = ParameterLayout(header.shape, threshold: activation == .jumprelu)
                guard (header.model ?? .sparseAutoencoder) == .sparseAutoencoder else {
                    throw UserError("\(file.path) is a \(header.model?.rawValue ?? "?") checkpoint; only sparse-autoencoder runs can be read")
                }
                let theta = try checkpoint.f32("parameters", count: layout.count, path: file.path)
                guard theta.allSatisfy(\.isFinite) else { throw UserError("\(file.path): the parameters are not finite") }
                let part = { (r: Range<Int>) in Array(theta[r]) }
                let weights = ModelWeights(shape: header.shape, V: part(layout.V), W: part(layout.W), b: part(layout.b), a: part(layout.a))
                let normalization = try checkpoint.normalization(file: file.path)
                    ?? Normalization.recorded(in: directory, config: config, d: header.shape.d)
                let rule = try InferenceRule.checkpointed(architecture: config.settings.architecture, checkpoint: checkpoint,
                                                          parameters: theta, layout: layout, file: file)
                return TrainedAutoencoder(directory: directory, config: config, weights: weights, normalization: normalization,
                                          rule: rule, lock: nil, checkpoint: file)
            } catch let error as UserError {
                guard attempt < 3, error.message.contains("no checkpoint") || error.message.contains("no usable checkpoint") else {
                    throw error.message.contains("no checkpoint to resume from")
                        ? UserError("\(directory.path): no checkpoint to read (⟨checkpoint⟩ latest); the run writes one every ⟨checkpoint-every⟩ iterations")
                        : error
                }
            }
        }
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
