import Foundation

/// The files a run writes at its end, as one set (`FileSet.write`): every file is staged whole
/// and durable under its temporary name before any takes its place, and a resumed run's set
/// replaces the previous session's as a group (`FileSet.swap`), so the run directory never
/// holds V.npy of one session beside W.npy of another. The set, in `members`'s order:
///
///  - the model's files (`ModelOutputs`, the one list a model extends: the sparse
///    autoencoder's V.npy, W.npy, b.npy, a.npy and model.safetensors; other models' arrays);
///  - filters.png, the model's first 64 filters (`filters`), with an image shape;
///  - activations.npy, (k, h) codes of the first k examples (the sheet's sparsity plot);
///  - mean.npy, (d) the data's per-pixel mean (with config.json's dataset.std it undoes the
///    standardization);
///  - feature_density.svg and feature_density.npy ((h) each unit's firing frequency over the
///    training examples, `FeatureDensity`), for a model whose codes fire.
///
/// Nothing is written when the parameters are not finite: the previous set, if any, stays.
/// config.json and metrics.jsonl are not in the set: they are written at the session's start
/// and as it logs (`RunFiles`).
public final class FinalFiles: RunObserver {
    public static let densityNames = ["feature_density.svg", "feature_density.npy"]
    public init() {}

    /// Each file of `result`'s set: its name and how to write it whole at a given path.
    public static func members(_ result: RunResult) -> [(name: String, producer: (String) throws -> Void)] {
        guard let outputs = result.outputs else { return [] }
        func npy(_ values: [Float], _ shape: [Int]) -> (String) throws -> Void {
            bytes(values.withUnsafeBufferPointer { NPYWriter.encode($0, shape: shape) })
        }
        var members: [(name: String, producer: (String) throws -> Void)] = []
        for (name, shape, values) in outputs.arrays { members.append((name, npy(values, shape))) }
        for (name, data) in outputs.files { members.append((name, bytes(data))) }
        if let shape = result.dataset.imageShape, !outputs.filters.isEmpty {
            let mosaic = ImageExport.filterMosaic(outputs.filters, shape: shape)
            members.append(("filters.png", { path in try PNGFile.write(mosaic, path: path) }))
        }
        if let codes = result.activations {
            members.append(("activations.npy", npy(codes, [codes.count / max(1, result.hidden), result.hidden])))
        }
        members.append(("mean.npy", npy(result.mean.map(Float.init), [result.mean.count])))
        if let density = result.featureDensity {
            let chart = FeatureDensityChart.chart(density, label: result.directory.lastPathComponent)
            members.append((densityNames[0], bytes(Data(chart.svg().utf8))))
            members.append((densityNames[1], npy(density.frequencies.map(Float.init), [density.firing.count])))
        }
        return members
    }

    /// The names of `result`'s set, for the closing line.
    public static func names(_ result: RunResult) -> [String] { members(result).map(\.name) }

    public func finished(_ result: RunResult) throws {
        try FileSet.write(Self.members(result).map { (result.directory.appendingPathComponent($0.name), $0.producer) })
    }

    private static func bytes(_ data: Data) -> (String) throws -> Void {
        { path in try DurableFile.writeBytes(data, at: path, for: URL(fileURLWithPath: path)) }
    }
}
