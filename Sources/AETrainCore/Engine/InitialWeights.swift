import Foundation

/// `--init DIR`: a sparse autoencoder's weights, and the normalization they were trained
/// with when DIR is a run directory (its config.json and mean.npy), which the new run applies
/// to its own data. A directory with only the four `.npy` files has none: the new run computes
/// its own statistics.
struct InitialWeights {
    var directory: String
    var weights: ModelWeights
    var normalization: Normalization?

    static func load(from directory: String) throws -> InitialWeights {
        let url = URL(fileURLWithPath: directory)
        // A run being trained replaces these files at its end: refused, as encode and export refuse it.
        let lock = try RunReadLock.take(url, for: "start a run from")
        defer { withExtendedLifetime(lock) {} }
        let weights = try ModelWeights.load(from: url)
        let configURL = url.appendingPathComponent("config.json")
        guard let bytes = FileManager.default.contents(atPath: configURL.path) else {
            return InitialWeights(directory: directory, weights: weights, normalization: nil)
        }
        let config: RunConfig
        do { config = try JSONDecoder().decode(RunConfig.self, from: bytes) } catch {
            throw UserError("⟨init⟩ \(directory)/config.json: not a run's config.json (\(TrainedAutoencoder.reason(error)))")
        }
        let normalization = try Normalization.recorded(in: url, config: config, d: weights.shape.d)
        return InitialWeights(directory: directory, weights: weights, normalization: normalization)
    }
}

extension Normalization {
    /// A finished run's normalization: config.json's `normalization` (kind and σ) and mean.npy
    /// (μ, float32); config.json without it (older runs) means the sheet's, σ = `dataset.std`.
    static func recorded(in directory: URL, config: RunConfig, d: Int) throws -> Normalization {
        let path = directory.appendingPathComponent("mean.npy").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw UserError("\(directory.path): mean.npy is missing (the run has not finished, or its files were removed)")
        }
        let reader = try NPYReader(path: path)
        let mean = try reader.readAll().map(Double.init)
        guard reader.header.shape == [d] else {
            throw UserError("\(path): shape \(reader.header.shape), but the model has d = \(d)")
        }
        let record = config.normalization ?? Record(kind: .sheet, scale: config.dataset.std)
        guard record.scale > 0, record.scale.isFinite, mean.allSatisfy(\.isFinite) else {
            throw UserError("\(directory.path): the recorded normalization is not usable (\(record.kind.rawValue), scale \(record.scale))")
        }
        return Normalization(record, mean: mean)
    }
}
