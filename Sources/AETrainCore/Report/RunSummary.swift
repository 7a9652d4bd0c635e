import Foundation

/// A finished run's directory, read back for `compare` and `report`.
public struct RunSummary {
    public var directory: URL
    /// The directory's name, used as the run's label.
    public var name: String
    public var config: RunConfig
    public var metrics: [LogRecord]
    /// (k, h) activations of the dataset's first k examples, if the run wrote them.
    public var activations: [Float]
    /// (h) each unit's firing frequency over the training examples (feature_density.npy), if written.
    public var featureDensity: [Float]? = nil

    public static func load(_ path: String) throws -> RunSummary {
        let dir = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw UserError("\(path): no such run directory")
        }
        let configURL = dir.appendingPathComponent("config.json")
        guard let configData = try? Data(contentsOf: configURL) else {
            throw UserError("\(path): not an aetrain run (no readable config.json)")
        }
        let config: RunConfig
        do { config = try JSONDecoder().decode(RunConfig.self, from: configData) } catch {
            throw UserError("\(configURL.path): not an aetrain config (\(error))")
        }
        var metrics: [LogRecord] = []
        if let text = try? String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8) {
            for (i, line) in text.split(separator: "\n").enumerated() {
                do { metrics.append(try JSONDecoder().decode(LogRecord.self, from: Data(line.utf8))) } catch {
                    throw UserError("\(path)/metrics.jsonl: line \(i + 1) is not a metrics record")
                }
            }
        }
        var activations: [Float] = []
        let activationsPath = dir.appendingPathComponent("activations.npy").path
        if FileManager.default.fileExists(atPath: activationsPath) {
            activations = try NPYReader(path: activationsPath).readAll()
        }
        let densityPath = dir.appendingPathComponent(FinalFiles.densityNames[1]).path
        let density = FileManager.default.fileExists(atPath: densityPath) ? try NPYReader(path: densityPath).readAll() : nil
        return RunSummary(directory: dir, name: dir.standardizedFileURL.lastPathComponent, config: config,
                          metrics: metrics, activations: activations, featureDensity: density)
    }

    /// A label that tells runs apart in legends: the directory name and what its model says
    /// of its settings (`ModelDefinition.label`).
    public var label: String {
        (config.model ?? ModelRegistry.standard).definition.label(run: name, settings: config.settings)
    }

    /// The activations sorted from largest to smallest: the sheet's sparsity plot.
    public var sortedActivations: [Float] { activations.sorted(by: >) }

    /// Fraction of activations at or below each threshold.
    public func fractionAtOrBelow(_ thresholds: [Float]) -> [Double] {
        thresholds.map { t in activations.isEmpty ? .nan : Double(activations.filter { $0 <= t }.count) / Double(activations.count) }
    }
}

/// The charts and tables that compare runs.
public enum RunComparison {
    public static let thresholds: [Float] = [0, 1e-3, 1e-2, 1e-1]

    /// The sheet's plot: every activation of the first 25 examples, sorted, one line per run.
    public static func sparsityChart(_ runs: [RunSummary]) -> LineChart {
        LineChart(title: "Activations of the first 25 examples, sorted from largest to smallest",
                  xLabel: "rank among the 25 × h activations", yLabel: "activation z",
                  width: 760, height: 440,
                  series: runs.map { run in
                      let sorted = run.sortedActivations
                      return ChartSeries(name: run.label, x: sorted.indices.map(Double.init), y: sorted.map(Double.init))
                  })
    }

    /// One chart per term: (file stem, title, log scale, value).
    /// A run that does not measure a term has no line in its chart.
    public static let curves: [(name: String, title: String, logY: Bool, value: (LogRecord) -> Double?)] = [
        ("rec", "rec: reconstruction error", true, { $0.rec }),
        ("spa", "spa: mean L1 norm of the code", false, { $0.spa }),
        ("ent", "ent: Σ 1/mean activation", true, { $0.ent }),
        ("reg", "reg: ‖W‖²", false, { $0.reg }),
        ("loss", "loss = rec + λ spa + ε ent + η reg", true, { $0.loss }),
        ("l0", "L0: active units per example", false, { $0.l0 }),
        ("explained_variance", "explained variance of the reconstruction", false, { $0.explainedVariance }),
    ]

    public static func curveCharts(_ runs: [RunSummary]) -> [(name: String, chart: LineChart)] {
        curves.map { curve in
            (curve.name, LineChart(title: curve.title, xLabel: "iteration", yLabel: curve.name, logY: curve.logY,
                                   series: runs.compactMap { run in
                                       let points = run.metrics.compactMap { r in curve.value(r).map { (Double(r.iteration), $0) } }
                                       return points.isEmpty ? nil : ChartSeries(name: run.label, x: points.map(\.0), y: points.map(\.1))
                                   }))
        }
    }

    /// Plain-text table of the sparsity fractions.
    public static func sparsityTable(_ runs: [RunSummary]) -> String {
        var lines = ["run".padding(toLength: 36, withPad: " ", startingAt: 0)
                     + thresholds.map { ("z ≤ " + ($0 == 0 ? "0" : "\($0)")).leftPadded(to: 12, with: " ") }.joined()]
        for run in runs {
            lines.append(String(run.label.prefix(35)).padding(toLength: 36, withPad: " ", startingAt: 0)
                         + run.fractionAtOrBelow(thresholds).map { String(format: "%11.1f%%", 100 * $0) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
