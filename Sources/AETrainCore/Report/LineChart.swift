import Foundation

/// One named line of a `LineChart`: the points `(x[i], y[i])`, drawn in array order.
/// If the arrays differ in length, the extra values of the longer one are ignored.
public struct ChartSeries: Equatable, Sendable {
    /// Legend label.
    public var name: String
    public var x: [Double]
    public var y: [Double]

    public init(name: String, x: [Double], y: [Double]) {
        self.name = name; self.x = x; self.y = y
    }
}

/// A dependency-free line chart rendered as a standalone SVG document.
///
/// The axes span exactly the range of the plottable data (expanded when degenerate), so the
/// data minimum and maximum land on the edges of the plot area.
public struct LineChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    /// log10 scale on y; non-positive y values are skipped (not plotted).
    public var logY: Bool = false
    public var width: Int = 640
    public var height: Int = 400
    public var series: [ChartSeries]

    public init(title: String, xLabel: String, yLabel: String, logY: Bool = false,
                width: Int = 640, height: Int = 400, series: [ChartSeries]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.logY = logY
        self.width = width; self.height = height; self.series = series
    }

    /// Okabe–Ito colours (colour-blind friendly), assigned to series in order and cycled.
    public static let palette: [String] = [
        "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
    ]

    /// The plot rectangle in SVG pixels (inside the margins for titles and tick labels).
    public var plotArea: (left: Double, top: Double, right: Double, bottom: Double) {
        let f = frame()
        return (f.left, f.top, f.right, f.bottom)
    }

    /// Maps a data point to SVG pixel coordinates inside the plot area (exposed for tests).
    /// Returns nil for points that are not plotted (non-finite, or y <= 0 in log mode).
    public func pixel(x: Double, y: Double) -> (x: Double, y: Double)? {
        frame().map(x, y)
    }

    /// A complete standalone SVG document.
    public func svg() -> String {
        let f = frame()
        var out: [String] = []
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">")
        out.append("<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>")
        appendAxes(f, to: &out)
        for (i, s) in series.enumerated() {
            let points = polylinePoints(s, f)
            guard !points.isEmpty else { continue }
            out.append("<polyline data-series=\"\(xmlEscape(s.name))\" fill=\"none\" stroke=\"\(color(i))\" "
                + "stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"\(points)\"/>")
        }
        if !f.hasData {
            out.append(text("no data", x: (f.left + f.right) / 2, y: (f.top + f.bottom) / 2,
                             extra: "text-anchor=\"middle\" fill=\"#888\" font-size=\"16\""))
        }
        appendLegend(f, to: &out)
        out.append(text(title, x: Double(width) / 2, y: 24, extra: "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\""))
        out.append(text(xLabel, x: (f.left + f.right) / 2, y: f.bottom + 42, extra: "text-anchor=\"middle\""))
        let yl = logY ? yLabel + " (log scale)" : yLabel
        let cy = (f.top + f.bottom) / 2
        out.append(text(yl, x: 16, y: cy, extra: "text-anchor=\"middle\" transform=\"rotate(-90 16 \(num(cy)))\""))
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    // MARK: - Layout

    /// The colour of series `i`.
    private func color(_ i: Int) -> String { Self.palette[i % Self.palette.count] }

    /// The plot rectangle and the axis ranges (y in log10 units when `logY`), computed once.
    private func frame() -> Frame {
        var xr = (lo: Double.infinity, hi: -Double.infinity), yr = xr
        for s in series {
            for i in 0..<min(s.x.count, s.y.count) {
                guard let (x, ty) = Frame.transform(s.x[i], s.y[i], logY: logY) else { continue }
                xr = (min(xr.lo, x), max(xr.hi, x)); yr = (min(yr.lo, ty), max(yr.hi, ty))
            }
        }
        let hasData = xr.lo <= xr.hi
        let left = 72.0, top = 40.0
        let right = max(left + 1, Double(width) - 20), bottom = max(top + 1, Double(height) - 56)
        let xs = expand(hasData ? xr : (0, 1), log: false)
        let ys = expand(hasData ? yr : (0, 1), log: logY)
        return Frame(left: left, top: top, right: right, bottom: bottom,
                     xLo: xs.lo, xHi: xs.hi, yLo: ys.lo, yHi: ys.hi, logY: logY, hasData: hasData)
    }

    /// Widens a single-value range: ±max(1, 10%) linear, ×/÷10 in log units.
    private func expand(_ r: (lo: Double, hi: Double), log: Bool) -> (lo: Double, hi: Double) {
        guard r.hi <= r.lo else { return r }
        let d = log ? 1 : max(1, abs(r.lo) * 0.1)
        return (r.lo - d, r.hi + d)
    }

    /// The `points` attribute of one series: plottable points in data order, "x,y x,y …".
    private func polylinePoints(_ s: ChartSeries, _ f: Frame) -> String {
        let n = min(s.x.count, s.y.count)
        var parts: [String] = []
        parts.reserveCapacity(n)
        for i in 0..<n {
            guard let p = f.map(s.x[i], s.y[i]) else { continue }
            parts.append(num(p.x) + "," + num(p.y))
        }
        return parts.joined(separator: " ")
    }

    // MARK: - Drawing

    /// Grid lines, axis lines, tick marks and tick labels.
    private func appendAxes(_ f: Frame, to out: inout [String]) {
        let xt = linearTicks(f.xLo, f.xHi)
        let yt = logY ? logTicks(f.yLo, f.yHi) : linearTicks(f.yLo, f.yHi)
        var grid: [String] = [], marks: [String] = []
        for t in xt {
            let x = f.left + (t.pos - f.xLo) / (f.xHi - f.xLo) * (f.right - f.left), px = num(x)
            grid.append(line(px, num(f.top), px, num(f.bottom)))
            marks.append(line(px, num(f.bottom), px, num(f.bottom + 5)))
            out.append(text(t.label, x: x, y: f.bottom + 18, extra: "text-anchor=\"middle\""))
        }
        for t in yt {
            let y = f.bottom - (t.pos - f.yLo) / (f.yHi - f.yLo) * (f.bottom - f.top), py = num(y)
            grid.append(line(num(f.left), py, num(f.right), py))
            marks.append(line(num(f.left - 5), py, num(f.left), py))
            out.append(text(t.label, x: f.left - 8, y: y + 4, extra: "text-anchor=\"end\""))
        }
        out.append("<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">" + grid.joined() + "</g>")
        marks.append(line(num(f.left), num(f.bottom), num(f.right), num(f.bottom)))
        marks.append(line(num(f.left), num(f.top), num(f.left), num(f.bottom)))
        out.append("<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\">" + marks.joined() + "</g>")
    }

    /// Legend box in the top-right corner of the plot: a colour sample and the name of every series.
    private func appendLegend(_ f: Frame, to out: inout [String]) {
        guard !series.isEmpty else { return }
        let longest = series.map { $0.name.count }.max() ?? 0
        let w = Double(min(longest, 40)) * 7 + 40, h = Double(series.count) * 18 + 8
        let x0 = max(f.left, f.right - w - 8), y0 = f.top + 8
        out.append("<g class=\"legend\"><rect x=\"\(num(x0))\" y=\"\(num(y0))\" width=\"\(num(w))\" height=\"\(num(h))\" "
            + "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"/>")
        for (i, s) in series.enumerated() {
            let y = y0 + 16 + Double(i) * 18
            out.append("<line x1=\"\(num(x0 + 6))\" y1=\"\(num(y - 4))\" x2=\"\(num(x0 + 26))\" y2=\"\(num(y - 4))\" "
                + "stroke=\"\(color(i))\" stroke-width=\"2\"/>")
            out.append(text(s.name, x: x0 + 32, y: y, extra: ""))
        }
        out.append("</g>")
    }

    /// A `<line>` element from already formatted coordinates.
    private func line(_ x1: String, _ y1: String, _ x2: String, _ y2: String) -> String {
        "<line x1=\"\(x1)\" y1=\"\(y1)\" x2=\"\(x2)\" y2=\"\(y2)\"/>"
    }

    /// A `<text>` element with escaped content.
    private func text(_ s: String, x: Double, y: Double, extra: String) -> String {
        "<text x=\"\(num(x))\" y=\"\(num(y))\"\(extra.isEmpty ? "" : " " + extra)>\(xmlEscape(s))</text>"
    }
}

/// Plot rectangle plus axis ranges; `map` is the data → pixel transform.
private struct Frame {
    let left, top, right, bottom: Double
    let xLo, xHi, yLo, yHi: Double
    let logY: Bool
    let hasData: Bool

    /// `(x, y)` or `(x, log10 y)`, or nil when the point is not plotted.
    static func transform(_ x: Double, _ y: Double, logY: Bool) -> (Double, Double)? {
        guard x.isFinite, y.isFinite, !logY || y > 0 else { return nil }
        return (x, logY ? log10(y) : y)
    }

    func map(_ x: Double, _ y: Double) -> (x: Double, y: Double)? {
        guard let (tx, ty) = Frame.transform(x, y, logY: logY) else { return nil }
        return (left + (tx - xLo) / (xHi - xLo) * (right - left),
                bottom - (ty - yLo) / (yHi - yLo) * (bottom - top))
    }
}

// MARK: - Ticks and number formatting

/// A tick at `pos` in axis units (log10 units on a log axis).
private typealias Tick = (pos: Double, label: String)

/// 4–8 ticks at multiples of a 1/2/5 × 10^k step (2.5 × 10^k when none of those fits).
private func linearTicks(_ lo: Double, _ hi: Double) -> [Tick] {
    let span = hi - lo
    guard span > 0, span.isFinite else { return [] }
    let base = pow(10, floor(log10(span)))
    var best = (score: Double.infinity, step: base, first: 0.0, last: -1.0)
    for e in -2...1 {
        for m in [1, 2, 5, 2.5] {
            let step = m * base * pow(10, Double(e))
            let first = ceil(lo / step - 1e-9), last = floor(hi / step + 1e-9)
            let n = last - first + 1
            let score = ((4...8).contains(n) ? 0 : 1000) + (m == 2.5 ? 100 : 0) + abs(n - 6)
            if score < best.score { best = (score, step, first, last) }
        }
    }
    guard best.last - best.first < 50 else { return [] }
    return stride(from: best.first, through: best.last, by: 1).map { k in
        (k * best.step, tickLabel(k * best.step, step: best.step))
    }
}

/// Log-axis ticks (lo, hi in log10 units): powers of ten, else 1-3 or 1-2-5 per decade, else linear.
private func logTicks(_ lo: Double, _ hi: Double) -> [Tick] {
    guard hi > lo, (hi - lo).isFinite else { return [] }
    let eLo = ceil(lo - 1e-9), eHi = floor(hi + 1e-9)
    let stepE = max(1, ceil((eHi - eLo + 1) / 8))
    var candidates: [[Tick]] = [stride(from: eLo, through: eHi, by: stepE).map { ($0, powerLabel(1, $0)) }]
    if hi - lo < 6 {
        for mantissas in [[1.0, 3.0], [1.0, 2.0, 5.0]] {
            var ticks: [Tick] = []
            for e in stride(from: floor(lo), through: ceil(hi), by: 1) {
                for m in mantissas where (lo - 1e-9...hi + 1e-9).contains(log10(m) + e) {
                    ticks.append((log10(m) + e, powerLabel(m, e)))
                }
            }
            candidates.append(ticks)
        }
    }
    let linear = linearTicks(pow(10, lo), pow(10, hi)).filter { $0.pos > 0 }
    candidates.append(linear.map { (log10($0.pos), $0.label) })
    if let good = candidates.first(where: { (4...8).contains($0.count) }) { return good }
    return candidates.min { abs($0.count - 6) < abs($1.count - 6) } ?? []
}

/// `m × 10^e` as "0.01", "20", "1000" for -3 ≤ e ≤ 4, else "1e5", "2e-4".
private func powerLabel(_ m: Double, _ e: Double) -> String {
    guard (-3...4).contains(e) else { return "\(Int(m))e\(Int(e))" }
    return String(format: "%g", m * pow(10, e))
}

/// A linear tick label with just enough digits for `step`; exponent form for very large or small values.
private func tickLabel(_ v: Double, step: Double) -> String {
    let v = abs(v) < step * 1e-6 ? 0 : v, a = abs(v)
    if a >= 1e5 || (a < 1e-3 && a > 0) {
        let r = (log10(a / step)).rounded(.up) + 1
        let digits = r.isFinite ? Int(min(12, max(1, r))) : 12
        let parts = String(format: "%.\(digits - 1)e", v).split(separator: "e")
        guard parts.count == 2, let exp = Int(parts[1]) else { return "\(v)" }
        var mantissa = String(parts[0])
        if mantissa.contains(".") {
            while mantissa.hasSuffix("0") { mantissa.removeLast() }
            if mantissa.hasSuffix(".") { mantissa.removeLast() }
        }
        return "\(mantissa)e\(exp)"
    }
    var d = 0
    while d < 8 {
        let scaled = step * pow(10, Double(d))
        if abs(scaled - scaled.rounded()) <= 1e-6 * scaled { break }
        d += 1
    }
    return String(format: "%.\(d)f", v)
}

/// A coordinate with at most 2 decimals ("12", "12.5", "12.05"), without `String(format:)`.
private func num(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    guard abs(v) < 1e12 else { return String(format: "%.0f", v) }
    let c = Int((v * 100).rounded())
    let a = c.magnitude, f = a % 100
    var s = (c < 0 ? "-" : "") + String(a / 100)
    if f != 0 { s += f % 10 == 0 ? ".\(f / 10)" : (f < 10 ? ".0\(f)" : ".\(f)") }
    return s
}

/// Escapes & < > " ' and drops control characters that XML 1.0 forbids.
private func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(ch)
        default: if ch.value >= 0x20 && ch.value != 0xFFFE && ch.value != 0xFFFF { out.unicodeScalars.append(ch) }
        }
    }
    return out
}
