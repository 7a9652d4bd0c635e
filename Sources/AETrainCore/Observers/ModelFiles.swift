import Foundation

/// The model's files at the end of a run (its `.npy` arrays and other files), the codes of
/// the first examples (activations.npy, the data of the sheet's sparsity plot) and the data's
/// per-pixel mean (mean.npy, which with config.json's dataset.std undoes the standardization).
/// Nothing is written when the parameters are not finite.
public final class ModelFiles: RunObserver {
    public init() {}

    public func finished(_ result: RunResult) throws {
        guard let outputs = result.outputs else { return }
        let dir = result.directory
        for (name, shape, values) in outputs.arrays { try NPYWriter.write(values, shape: shape, to: dir.appendingPathComponent(name)) }
        for (name, data) in outputs.files { try DurableFile.write(data, to: dir.appendingPathComponent(name)) }
        if let codes = result.activations {
            try NPYWriter.write(codes, shape: [codes.count / max(1, result.hidden), result.hidden], to: dir.appendingPathComponent("activations.npy"))
        }
        try NPYWriter.write(result.mean.map(Float.init), shape: [result.mean.count], to: dir.appendingPathComponent("mean.npy"))
    }
}
