import Foundation

/// What a finished (or stopped) run leaves beside config.json, metrics.jsonl and dataset.png.
public enum RunArtifacts {
    /// The sheet's sparsity plot uses the activations of the dataset's first 25 examples.
    public static let activationExamples = 25

    public static let fileNames = ["V.npy", "W.npy", "b.npy", "a.npy", "mean.npy", "model.safetensors", "filters.png",
                                   "activations.npy", "config.json", "metrics.jsonl", "dataset.png"]

    /// Writes the weights (.npy and safetensors), the per-pixel mean (d) the data was centred
    /// with, the decoder filter mosaic and the first examples' activations (k, h), each file
    /// atomically. With config.json's `dataset.std`, the mean lets new data be encoded:
    /// z = relu(((x − mean) / std) V + b).
    public static func write(weights: ModelWeights, activations: [Float]?, mean: [Double], imageShape: ImageShape,
                             to directory: URL) throws {
        try weights.write(to: directory)
        try mean.map(Float.init).withUnsafeBufferPointer {
            try NPYWriter.write($0, shape: [mean.count], to: directory.appendingPathComponent("mean.npy"))
        }
        try AtomicFile.write(weights.safetensors(metadata: ["format": "aetrain", "layout": "z = relu(x V + b), x_hat = z W + a"]),
                             to: directory.appendingPathComponent("model.safetensors"))
        try PNGFile.write(filterMosaic(weights, imageShape: imageShape), to: directory.appendingPathComponent("filters.png"))
        if let activations {
            let k = activations.count / max(1, weights.shape.h)
            try activations.withUnsafeBufferPointer {
                try NPYWriter.write($0, shape: [k, weights.shape.h], to: directory.appendingPathComponent("activations.npy"))
            }
        }
    }

    /// The first 64 decoder filters (rows of W as images), 8 to a row, each scaled on its own.
    public static func filterMosaic(_ weights: ModelWeights, imageShape: ImageShape) -> Image8 {
        let d = weights.shape.d
        let filters = (0..<min(64, weights.shape.h)).map { Array(weights.W[($0 * d)..<(($0 + 1) * d)]) }
        return Mosaic.grid(filters, shape: imageShape)
    }
}
