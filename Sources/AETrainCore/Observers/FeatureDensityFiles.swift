import Foundation

/// feature_density.svg (the histogram of log10 firing frequencies, `FeatureDensityChart`) and
/// feature_density.npy ((h) each unit's firing frequency over the training examples, float32),
/// at the end of a run whose model's codes fire (`FeatureDensity`). With or without an image shape.
public final class FeatureDensityFiles: RunObserver {
    public static let names = ["feature_density.svg", "feature_density.npy"]
    public init() {}

    public func finished(_ result: RunResult) throws {
        guard let density = result.featureDensity else { return }
        let chart = FeatureDensityChart.chart(density, label: result.directory.lastPathComponent)
        try DurableFile.write(Data(chart.svg().utf8), to: result.directory.appendingPathComponent(Self.names[0]))
        try NPYWriter.write(density.frequencies.map(Float.init), shape: [density.firing.count],
                            to: result.directory.appendingPathComponent(Self.names[1]))
    }
}
