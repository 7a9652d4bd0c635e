import Foundation

/// One self-contained HTML page about one or more runs: settings, final terms and metrics,
/// training curves, the sparsity plot, the filter and dataset mosaics. Images are inlined
/// (PNG as data: URLs, charts as inline SVG), so the file opens in any browser offline.
public enum HTMLReport {
    /// The sections, in page order, by element id.
    public static let sections = ["settings", "final", "curves", "sparsity", "density", "filters", "dataset"]

    public static func render(_ runs: [RunSummary], generated: Date = Date()) -> String {
        var html: [String] = []
        html.append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>aetrain report</title>
            <style>
            body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
            table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
            th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
            th:first-child, td:first-child { text-align: left; }
            .grid { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
            figure { margin: 0; } figcaption { font-size: 0.9em; color: #555; margin-top: 0.3em; }
            img.mosaic { image-rendering: pixelated; border: 1px solid #ccc; }
            </style></head><body>
            <h1>aetrain report</h1>
            <p>\(runs.count) run(s), generated \(ISO8601DateFormatter().string(from: generated)).
            The model is the exercise sheet's sparse autoencoder: z = relu(x V + b), x̂ = z W + a,
            loss = rec + λ·spa + ε·ent + η·reg.</p>
            """)

        html.append("<h2 id=\"settings\">Settings</h2>")
        html.append(table(header: ["run", "model", "λ", "ε", "η", "h", "lr", "batch", "iterations", "ranks", "data", "examples", "image", "fingerprint"],
                          rows: runs.map { r in
                              let s = r.config.settings, o = s.objective
                              return [r.name, (r.config.model ?? .sparseAutoencoder).rawValue, fmt(o.lambda), fmt(o.epsilon), fmt(o.eta), "\(s.hidden)", fmt(s.adam.learningRate),
                                      "\(s.batchSize)", "\(s.iterations)", "\(r.config.ranks)", r.config.dataset.source,
                                      "\(r.config.dataset.examples)", r.config.dataset.imageShape.map { "\($0)" } ?? "– (D = \(r.config.dataset.dimensions))", r.config.dataset.fingerprint]
                          }))

        html.append("<h2 id=\"final\">Final terms and metrics</h2>")
        html.append(table(header: ["run", "iteration", "rec", "spa", "ent", "reg", "loss", "L0", "dead units", "explained var.", "seconds"],
                          rows: runs.map { r in
                              guard let m = r.metrics.last else { return [r.name] + Array(repeating: "–", count: 10) }
                              func opt(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "–" }
                              return [r.name, "\(m.iteration)", fmt2(m.rec), m.spa.map(fmt2) ?? "–", m.ent.map(fmt2) ?? "–", m.reg.map(fmt2) ?? "–",
                                      fmt2(m.loss), opt(m.l0, "%.1f"), m.deadUnits.map { "\($0)" } ?? "–", opt(m.explainedVariance, "%.4f"),
                                      String(format: "%.1f", m.seconds)]
                          }))

        html.append("<h2 id=\"curves\">Training curves</h2><div class=\"grid\">")
        for (_, chart) in RunComparison.curveCharts(runs) { html.append("<figure>\(chart.svg())</figure>") }
        html.append("</div>")

        html.append("<h2 id=\"sparsity\">Sparsity of the codes</h2>")
        html.append("<p>The sheet's plot: all activations of the dataset's first 25 examples, sorted from largest to smallest.</p>")
        html.append("<figure>\(RunComparison.sparsityChart(runs).svg())</figure>")
        html.append(table(header: ["run"] + RunComparison.thresholds.map { "z ≤ \($0 == 0 ? "0" : "\($0)")" },
                          rows: runs.map { r in [r.name] + r.fractionAtOrBelow(RunComparison.thresholds).map { String(format: "%.1f%%", 100 * $0) } }))

        html.append("<h2 id=\"density\">Feature density</h2>")
        let densities = runs.compactMap { r in r.featureDensity.map { (r.label, $0.map { log10(Double($0) + FeatureDensity.floor) }) } }
        if densities.isEmpty {
            html.append("<p>No run measured it (only models whose codes are sparse do).</p>")
        } else {
            html.append("<p>How many units fire with each frequency over the training examples at the end of the run (log10; "
                        + "units that never fired are at −10). Dead units: "
                        + runs.compactMap { r in r.featureDensity.map { "\(escape(r.name)) \($0.filter { $0 == 0 }.count) of \($0.count)" } }.joined(separator: ", ") + ".</p>")
            html.append("<figure>\(FeatureDensityChart.chart(densities, title: "Feature density: log10 firing frequency of each unit").svg())</figure>")
        }

        let images = runs.filter { $0.config.dataset.imageShape != nil }
        html.append("<h2 id=\"filters\">Decoder filters</h2>")
        if images.count < runs.count {
            html.append("<p>Runs on N×D data without an image shape have no image outputs: "
                        + runs.filter { $0.config.dataset.imageShape == nil }.map { escape($0.name) }.joined(separator: ", ") + ".</p>")
        }
        html.append("<p>The first 64 decoder filters (rows of W), dictionary atoms or principal directions as images, each scaled on its own from black (min) to white (max).</p><div class=\"grid\">")
        for r in images { html.append(figure(r.directory.appendingPathComponent("filters.png"), caption: r.label)) }
        html.append("</div>")

        html.append("<h2 id=\"dataset\">Dataset</h2><div class=\"grid\">")
        // Once per distinct dataset.
        var shown = Set<String>()
        for r in images where shown.insert(r.config.dataset.fingerprint).inserted {
            html.append(figure(r.directory.appendingPathComponent("dataset.png"),
                               caption: "first images of \(r.config.dataset.source) (\(runs.filter { $0.config.dataset.fingerprint == r.config.dataset.fingerprint }.map(\.name).joined(separator: ", ")))"))
        }
        html.append("</div>")

        // Lets a headless browser report how many images decoded.
        html.append("""
            <script>
            window.addEventListener('load', function () {
              var imgs = document.querySelectorAll('img');
              var ok = 0; imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok++; });
              document.body.setAttribute('data-images', imgs.length);
              document.body.setAttribute('data-images-loaded', ok);
            });
            </script>
            </body></html>
            """)
        return html.joined(separator: "\n")
    }

    static func figure(_ png: URL, caption: String) -> String {
        guard let data = try? Data(contentsOf: png) else {
            return "<figure><p>(\(escape(png.lastPathComponent)) missing)</p><figcaption>\(escape(caption))</figcaption></figure>"
        }
        return "<figure><img class=\"mosaic\" alt=\"\(escape(caption))\" src=\"data:image/png;base64,\(data.base64EncodedString())\">"
            + "<figcaption>\(escape(caption))</figcaption></figure>"
    }

    static func table(header: [String], rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double) -> String { String(format: "%g", v) }
    static func fmt2(_ v: Double) -> String { String(format: "%.2f", v) }
}
