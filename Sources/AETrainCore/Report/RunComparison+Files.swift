import Foundation

extension RunComparison {
    /// Writes the comparison of `runs` into `directory` (made if missing), each file through
    /// `DurableFile`: sparsity.svg (the sheet's sparsity plot), one curve-TERM.svg per logged
    /// term (runs overlaid) and sparsity.csv (per run: λ and the fraction of activations at or
    /// below each of `thresholds`).
    public static func write(_ runs: [RunSummary], to directory: URL) throws {
        try InputOutputPaths.check(output: directory, setting: "out", runs: runs.map(\.directory))
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw UserError("⟨out⟩ \(directory.relativePath): cannot create the directory: \(error.localizedDescription)")
        }
        try DurableFile.write(Data(sparsityChart(runs).svg().utf8), to: directory.appendingPathComponent("sparsity.svg"))
        for (name, chart) in curveCharts(runs) {
            try DurableFile.write(Data(chart.svg().utf8), to: directory.appendingPathComponent("curve-\(name).svg"))
        }
        try DurableFile.write(Data(sparsityCSV(runs).utf8), to: directory.appendingPathComponent("sparsity.csv"))
    }

    /// sparsity.csv: `run,lambda,at_or_below_T…`, one line per run.
    public static func sparsityCSV(_ runs: [RunSummary]) -> String {
        var csv = "run,lambda," + thresholds.map { "at_or_below_\($0)" }.joined(separator: ",") + "\n"
        for r in runs {
            csv += "\(r.name),\(r.config.settings.objective.lambda)," + r.fractionAtOrBelow(thresholds).map { "\($0)" }.joined(separator: ",") + "\n"
        }
        return csv
    }
}

extension HTMLReport {
    /// Writes `render(runs)` to `file` through `DurableFile`.
    public static func write(_ runs: [RunSummary], to file: URL) throws {
        try InputOutputPaths.check(output: file, setting: "out", runs: runs.map(\.directory))
        try DurableFile.write(Data(render(runs).utf8), to: file)
    }
}
