import AETrainCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// One parsed XML element: name, attributes and directly contained text.
private struct Element {
    var name: String
    var attributes: [String: String]
    var text = ""
}

/// Collects every element of a document, in document order, with XMLParser.
private final class Collector: NSObject, XMLParserDelegate {
    var elements: [Element] = []
    private var open: [Int] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        open.append(elements.count)
        elements.append(Element(name: elementName, attributes: attributeDict))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        _ = open.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }
}

final class LineChartTests: XCTestCase {
    /// Parses `svg`, failing the test on any XML error.
    private func parse(_ svg: String, root: String = "svg", file: StaticString = #filePath, line: UInt = #line) -> [Element] {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        XCTAssertTrue(ok, "XML error: \(String(describing: parser.parserError))", file: file, line: line)
        XCTAssertNil(parser.parserError, file: file, line: line)
        XCTAssertEqual(collector.elements.first?.name, root, file: file, line: line)
        return collector.elements
    }

    private func polylines(_ elements: [Element]) -> [Element] { elements.filter { $0.name == "polyline" } }

    private func pointCount(_ polyline: Element) -> Int {
        (polyline.attributes["points"] ?? "").split(separator: " ").count
    }

    private func texts(_ elements: [Element]) -> [String] { elements.filter { $0.name == "text" }.map(\.text) }

    /// Grid lines: vertical (x ticks) and horizontal (y ticks).
    private func gridCounts(_ svg: String) -> (x: Int, y: Int) {
        guard let start = svg.range(of: "<g class=\"grid\""), let end = svg[start.upperBound...].range(of: "</g>") else {
            XCTFail("no grid group"); return (0, 0)
        }
        let elements = parse(String(svg[start.lowerBound..<end.upperBound]), root: "g")
        let lines = elements.filter { $0.name == "line" }
        let vertical = lines.filter { $0.attributes["x1"] == $0.attributes["x2"] }.count
        return (vertical, lines.count - vertical)
    }

    private func chart(_ series: [ChartSeries], logY: Bool = false, width: Int = 640, height: Int = 400) -> LineChart {
        LineChart(title: "Loss", xLabel: "epoch", yLabel: "loss", logY: logY, width: width, height: height, series: series)
    }

    func testSVGParsesAndRootHasSize() {
        let c = chart([ChartSeries(name: "train", x: [0, 1, 2], y: [3, 2, 1.5])], width: 500, height: 300)
        let svg = c.svg()
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"500\" height=\"300\" viewBox=\"0 0 500 300\""))
        let root = parse(svg)[0]
        XCTAssertEqual(root.attributes["width"], "500")
        XCTAssertEqual(root.attributes["height"], "300")
        XCTAssertEqual(root.attributes["viewBox"], "0 0 500 300")
        let allTexts = texts(parse(svg))
        for label in ["Loss", "epoch", "loss", "train"] { XCTAssertTrue(allTexts.contains(label), label) }
        XCTAssertNil(svg.range(of: #"\d\.\d{3,}"#, options: .regularExpression), "more than 2 decimals")
    }

    func testOnePolylinePerPlottableSeriesWithDistinctColours() {
        var series = (0..<9).map { i in ChartSeries(name: "s\(i)", x: [0, 1, 2], y: [Double(i), Double(i) + 1, 0.5]) }
        series.insert(ChartSeries(name: "empty", x: [], y: []), at: 3)
        series.insert(ChartSeries(name: "nan", x: [.nan, 1], y: [1, .infinity]), at: 5)
        let elements = parse(chart(series).svg())
        let lines = polylines(elements)
        XCTAssertEqual(lines.map { $0.attributes["data-series"] ?? "" }, (0..<9).map { "s\($0)" })
        XCTAssertTrue(lines.allSatisfy { $0.attributes["fill"] == "none" && pointCount($0) == 3 })
        let strokes = lines.map { $0.attributes["stroke"] ?? "" }
        // Colours follow series order (including the series that draw nothing) and cycle.
        let palette = LineChart.palette
        XCTAssertGreaterThanOrEqual(palette.count, 8)
        XCTAssertEqual(strokes[0], palette[0])
        XCTAssertEqual(strokes[3], palette[4])
        XCTAssertEqual(strokes[8], palette[10 % palette.count])
        // The legend lists every series, in order, including those without plottable points.
        let legendNames = texts(elements).filter { t in series.contains { $0.name == t } }
        XCTAssertEqual(legendNames, series.map(\.name))
        // The first 8 series get 8 distinct colours.
        let eight = polylines(parse(chart(Array(series.filter { $0.name.hasPrefix("s") }.prefix(8))).svg()))
        XCTAssertEqual(eight.count, 8)
        XCTAssertEqual(Set(eight.map { $0.attributes["stroke"] ?? "" }).count, 8)
    }

    func testPixelMapsDataRangeToPlotEdges() throws {
        let c = chart([ChartSeries(name: "a", x: [2, 5, 12], y: [0, 7, 1]), ChartSeries(name: "b", x: [4], y: [-3])])
        let area = c.plotArea
        XCTAssertLessThan(area.left, area.right)
        XCTAssertLessThan(area.top, area.bottom)
        let lowerLeft = try XCTUnwrap(c.pixel(x: 2, y: -3))
        let upperRight = try XCTUnwrap(c.pixel(x: 12, y: 7))
        XCTAssertEqual(lowerLeft.x, area.left, accuracy: 1e-9)
        XCTAssertEqual(lowerLeft.y, area.bottom, accuracy: 1e-9)
        XCTAssertEqual(upperRight.x, area.right, accuracy: 1e-9)
        XCTAssertEqual(upperRight.y, area.top, accuracy: 1e-9)
        let p = try XCTUnwrap(c.pixel(x: 5, y: 1)), q = try XCTUnwrap(c.pixel(x: 6, y: 2))
        XCTAssertLessThan(p.x, q.x)
        XCTAssertGreaterThan(p.y, q.y)
        XCTAssertNil(c.pixel(x: .nan, y: 1))
        XCTAssertNil(c.pixel(x: 1, y: .infinity))
        XCTAssertNotNil(c.pixel(x: 1, y: -1), "negative y is plotted on a linear axis")
    }

    func testLogScaleEqualRatiosAreEqualDistances() throws {
        let c = chart([ChartSeries(name: "a", x: [0, 1, 2, 3], y: [1000, 3, 0.01, 0])], logY: true)
        let area = c.plotArea
        XCTAssertEqual(try XCTUnwrap(c.pixel(x: 0, y: 1000)).y, area.top, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(c.pixel(x: 2, y: 0.01)).y, area.bottom, accuracy: 1e-9)
        let ys = try [0.1, 1, 10, 100].map { try XCTUnwrap(c.pixel(x: 1, y: $0)).y }
        let d1 = ys[0] - ys[1], d2 = ys[1] - ys[2], d3 = ys[2] - ys[3]
        XCTAssertGreaterThan(d1, 1)
        XCTAssertEqual(d1, d2, accuracy: 1e-9)
        XCTAssertEqual(d2, d3, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(c.pixel(x: 1, y: 2)).y - (try XCTUnwrap(c.pixel(x: 1, y: 4)).y),
                       try XCTUnwrap(c.pixel(x: 1, y: 50)).y - (try XCTUnwrap(c.pixel(x: 1, y: 100)).y), accuracy: 1e-9)
        XCTAssertNil(c.pixel(x: 1, y: 0))
        XCTAssertNil(c.pixel(x: 1, y: -5))
    }

    func testLogModeSkipsNonPositivePoints() {
        let s = ChartSeries(name: "s", x: [0, 1, 2, 3, 4, 5], y: [1, 0, 10, -5, 100, .nan])
        let negative = ChartSeries(name: "neg", x: [0, 1], y: [0, -1])
        let log = parse(chart([s, negative], logY: true).svg())
        XCTAssertEqual(polylines(log).map(pointCount), [3])
        XCTAssertTrue(texts(log).contains("neg"))
        XCTAssertTrue(texts(log).contains("loss (log scale)"))
        let linear = parse(chart([s, negative]).svg())
        XCTAssertEqual(polylines(linear).map(pointCount), [5, 2])
        XCTAssertFalse(texts(linear).contains("loss (log scale)"))
    }

    func testTicksAreNiceAndFewEnough() {
        for (lo, hi) in [(0.0, 1.0), (1.0, 19.0), (-3.0, 7.0), (0.001, 0.0042), (1000.0, 1_000_000.0), (5.0, 5.5)] {
            let svg = chart([ChartSeries(name: "a", x: [lo, hi], y: [hi, lo])]).svg()
            let counts = gridCounts(svg)
            XCTAssertTrue((4...8).contains(counts.x), "x ticks \(counts.x) for \(lo)...\(hi)")
            XCTAssertTrue((4...8).contains(counts.y), "y ticks \(counts.y) for \(lo)...\(hi)")
        }
        let unit = texts(parse(chart([ChartSeries(name: "a", x: [0, 1], y: [0, 1])]).svg()))
        for label in ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"] { XCTAssertTrue(unit.contains(label), label) }
        let tens = texts(parse(chart([ChartSeries(name: "a", x: [0, 10], y: [-10, 10])]).svg()))
        for label in ["0", "2", "4", "6", "8", "10", "-10", "-5", "5"] { XCTAssertTrue(tens.contains(label), label) }
        let logSVG = chart([ChartSeries(name: "a", x: [0, 1], y: [0.01, 1e5])], logY: true).svg()
        let logTexts = texts(parse(logSVG))
        for label in ["0.01", "1", "100", "1e5"] { XCTAssertTrue(logTexts.contains(label), label) }
        XCTAssertTrue((4...8).contains(gridCounts(logSVG).y))
        for (lo, hi) in [(2.0, 50.0), (0.6, 600.0), (2.0, 3.0), (1e-30, 1e30)] {
            let svg = chart([ChartSeries(name: "a", x: [0, 1], y: [lo, hi])], logY: true).svg()
            XCTAssertTrue((4...8).contains(gridCounts(svg).y), "log y ticks for \(lo)...\(hi)")
        }
    }

    func testNamesAndTextAreEscaped() {
        let name = "a<&>\"'b"
        var c = chart([ChartSeries(name: name, x: [0, 1], y: [1, 2])])
        c.title = "<T&T>"
        let svg = c.svg()
        XCTAssertTrue(svg.contains("data-series=\"a&lt;&amp;&gt;&quot;&apos;b\""))
        XCTAssertFalse(svg.contains("<T&T>"))
        let elements = parse(svg)
        XCTAssertEqual(polylines(elements).first?.attributes["data-series"], name)
        XCTAssertTrue(texts(elements).contains("<T&T>"))
        XCTAssertTrue(texts(elements).contains(name))
    }

    func testEmptyInputsStillGiveValidSVG() {
        for series in [[], [ChartSeries(name: "e", x: [], y: [])], [ChartSeries(name: "bad", x: [.nan], y: [.nan])]] {
            for logY in [false, true] {
                let svg = chart(series, logY: logY).svg()
                let elements = parse(svg)
                XCTAssertTrue(polylines(elements).isEmpty)
                XCTAssertTrue(texts(elements).contains("no data"))
                XCTAssertGreaterThanOrEqual(elements.filter { $0.name == "line" }.count, 2, "axes")
                XCTAssertNil(svg.range(of: "nan|inf", options: [.regularExpression, .caseInsensitive]))
            }
        }
        // A single point (degenerate range on both axes) is plotted inside the plot area.
        let single = chart([ChartSeries(name: "p", x: [3], y: [5])])
        let area = single.plotArea
        if let p = single.pixel(x: 3, y: 5) {
            XCTAssertTrue(p.x > area.left && p.x < area.right && p.y > area.top && p.y < area.bottom)
        } else { XCTFail("single point not plotted") }
        XCTAssertEqual(polylines(parse(single.svg())).map(pointCount), [1])
        XCTAssertFalse(texts(parse(chart([ChartSeries(name: "p", x: [3], y: [5])], logY: true).svg())).contains("no data"))
    }

    func testManyPointsRenderQuickly() {
        let n = 10_000
        let series = (0..<4).map { s in
            ChartSeries(name: "s\(s)", x: (0..<n).map(Double.init), y: (0..<n).map { exp(-Double($0) / 3000) * Double(s + 1) })
        }
        let start = Date()
        let svg = chart(series, logY: true).svg()
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, 1.0)
        XCTAssertEqual(polylines(parse(svg)).map(pointCount), [n, n, n, n])
    }
}
