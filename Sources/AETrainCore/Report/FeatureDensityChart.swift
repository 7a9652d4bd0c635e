import Foundation

/// The feature-density histogram (as SAELens plots it): how many units fire with each
/// log10 frequency over the training examples, one outline per run, in bins of a tenth of a
/// decade. Units that never fired sit in the bin at −10 (log10 of the 1e-10 floor).
public enum FeatureDensityChart {
    /// Bin width, in decades.
    static let binWidth = 0.1

    /// One series per (label, log10 frequencies), sharing bins from the lowest value to 0.
    public static func chart(_ runs: [(label: String, log10Frequencies: [Double])], title: String) -> LineChart {
        let values = runs.flatMap(\.log10Frequencies).filter(\.isFinite)
        let lo = ((values.min() ?? -1) / binWidth).rounded(.down) * binWidth
        let hi = max(0, ((values.max() ?? 0) / binWidth).rounded(.up) * binWidth)
        let bins = max(1, Int(((hi - lo) / binWidth).rounded()))
        return LineChart(title: title, xLabel: "log10 firing frequency (never: −10)", yLabel: "units",
                         width: 760, height: 440,
                         series: runs.map { run in
                             var counts = [Double](repeating: 0, count: bins)
                             for v in run.log10Frequencies where v.isFinite {
                                 counts[min(bins - 1, max(0, Int(((v - lo) / binWidth).rounded(.down))))] += 1
                             }
                             let line = outline(counts, lo: lo)
                             return ChartSeries(name: run.label, x: line.x, y: line.y)
                         })
    }

    /// The histogram's outline as a polyline: up and across each bin, down at the end.
    static func outline(_ counts: [Double], lo: Double) -> (x: [Double], y: [Double]) {
        var x = [lo], y = [0.0]
        for (k, c) in counts.enumerated() {
            let left = lo + Double(k) * binWidth
            x += [left, left + binWidth]; y += [c, c]
        }
        x.append(lo + Double(counts.count) * binWidth); y.append(0)
        return (x, y)
    }

    /// The chart of one run's density: its title says how many examples and dead units.
    public static func chart(_ density: FeatureDensity, label: String) -> LineChart {
        chart([(label, density.log10Frequencies)],
              title: "Feature density over \(density.examples) training examples (\(density.deadUnits) of \(density.firing.count) units never fired)")
    }
}
