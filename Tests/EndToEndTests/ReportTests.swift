import AETrainCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `compare` and `report` on the sheet's dense and sparse runs (`SheetRuns`, shared with the
/// other tests that only read them), checked with numpy and headless Chromium.
final class ReportTests: XCTestCase {
    /// This test's outputs, beside (not inside) the shared runs.
    var root: URL!
    override func setUpWithError() throws { root = try Harness.temporaryDirectory("report") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func runs() throws -> (root: URL, dense: String, sparse: String) {
        let runs = try SheetRuns.runs()
        return (root, runs.dense.path, runs.sparse.path)
    }

    func parseSVG(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let text = try String(contentsOf: url, encoding: .utf8)
        let parser = XMLParser(data: Data(text.utf8))
        XCTAssertTrue(parser.parse(), "\(url.lastPathComponent) is not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        return text
    }

    func testCompareDrawsTheSortedActivations() throws {
        let (root, dense, sparse) = try runs()
        let out = root.appendingPathComponent("compare")
        let r = try Harness.aetrain(["compare", dense, sparse, "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let svg = try parseSVG(out.appendingPathComponent("sparsity.svg"))
        XCTAssertTrue(svg.contains("width=\"760\" height=\"440\""))
        XCTAssertTrue(svg.contains("dense (λ = 0.0)") && svg.contains("sparse (λ = 1.0)"), "legend")
        for name in RunComparison.curves.map(\.name) { _ = try parseSVG(out.appendingPathComponent("curve-\(name).svg")) }

        // Each polyline is the run's 25 × 400 activations sorted from largest to smallest:
        // its points are an affine image of numpy's sort of activations.npy.
        let check = try Harness.python("""
            import numpy as np, re, csv
            svg = open('\(out.path)/sparsity.svg').read()
            lines = dict(re.findall(r'<polyline[^>]*data-series="([^"]*)"[^>]*points="([^"]*)"', svg)) or \\
                    {k: v for v, k in re.findall(r'<polyline[^>]*points="([^"]*)"[^>]*data-series="([^"]*)"', svg)}
            rows = {r['run']: r for r in csv.DictReader(open('\(out.path)/sparsity.csv'))}
            for run, path, label in [('dense', '\(dense)', 'dense (λ = 0.0)'), ('sparse', '\(sparse)', 'sparse (λ = 1.0)')]:
                z = np.sort(np.load(path + '/activations.npy').ravel())[::-1]
                pts = np.array([[float(v) for v in p.split(',')] for p in lines[label].split()])
                assert len(pts) == z.size == 10000, (len(pts), z.size)
                A = np.stack([z, np.ones_like(z)], 1)
                coef, res, *_ = np.linalg.lstsq(A, pts[:, 1], rcond=None)
                assert coef[0] < 0 and np.abs(A @ coef - pts[:, 1]).max() < 0.02, ('y not affine in sorted z', coef)
                assert np.all(np.diff(pts[:, 0]) > 0)
                for t in (0.0, 0.001, 0.01, 0.1):
                    assert abs(float(rows[run]['at_or_below_' + str(t)]) - (z <= np.float32(t)).mean()) < 1e-9, (run, t)
            print('sparse zero fraction', (np.load('\(sparse)/activations.npy') == 0).mean())
            """)
        XCTAssertTrue(check.stdout.contains("sparse zero fraction"), check.stderr)
    }

    func testReportHasEverySectionAndRendersInChromium() throws {
        let (root, dense, sparse) = try runs()
        let html = root.appendingPathComponent("report.html")
        let r = try Harness.aetrain(["report", dense, sparse, "--out", html.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = try String(contentsOf: html, encoding: .utf8)
        for id in HTMLReport.sections { XCTAssertTrue(text.contains("id=\"\(id)\""), "section \(id)") }
        XCTAssertEqual(text.components(separatedBy: "src=\"data:image/png;base64,").count - 1, 3, "2 filter mosaics and the one dataset's mosaic, inlined")
        XCTAssertEqual(text.components(separatedBy: "<svg ").count - 1, RunComparison.curves.count + 2, "curves, the sparsity plot and the feature density")
        XCTAssertFalse(text.contains("src=\"http") || text.contains("href=\"http"), "self-contained")

        let chromium = "/usr/bin/chromium"
        guard FileManager.default.isExecutableFile(atPath: chromium) else {
            return XCTFail("chromium is missing: install Debian's chromium package (deploy/test.sh does)")
        }
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
        let dom = try Harness.run(chromium, flags + ["--virtual-time-budget=5000", "--dump-dom", html.absoluteString], timeout: 120)
        XCTAssertEqual(dom.status, 0, dom.stderr)
        XCTAssertTrue(dom.stdout.contains("data-images=\"3\""), "images counted")
        XCTAssertTrue(dom.stdout.contains("data-images-loaded=\"3\""), "every image decoded in the browser")

        let shot = root.appendingPathComponent("report.png")
        let s = try Harness.run(chromium, flags + ["--window-size=1400,4200", "--screenshot=\(shot.path)", html.absoluteString], timeout: 120)
        XCTAssertEqual(s.status, 0, s.stderr)
        // The screenshot shows the charts' coloured lines and the grey mosaics.
        let py = try Harness.python("""
            import numpy as np
            from PIL import Image
            a = np.asarray(Image.open('\(shot.path)').convert('RGB')).astype(int)
            blue = (np.abs(a - [0, 114, 178]).sum(2) < 40).sum()
            orange = (np.abs(a - [213, 94, 0]).sum(2) < 40).sum()
            grey = ((a[..., 0] == a[..., 1]) & (a[..., 1] == a[..., 2]) & (a[..., 0] > 20) & (a[..., 0] < 235)).sum()
            print(a.shape[0], a.shape[1], blue, orange, grey)
            """)
        let v = py.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(v.count, 5, py.stdout)
        XCTAssertEqual(v.prefix(2), [4200, 1400])
        XCTAssertGreaterThan(v.dropFirst(2).first ?? 0, 500, "first run's lines drawn")
        XCTAssertGreaterThan(v.dropFirst(3).first ?? 0, 500, "second run's lines drawn")
        XCTAssertGreaterThan(v.last ?? 0, 100_000, "mosaics drawn")
    }

    func testBadRunDirectoryIsAClearError() throws {
        let (root, dense, _) = try runs()
        let r = try Harness.aetrain(["report", dense, root.appendingPathComponent("nope").path, "--out", root.appendingPathComponent("x.html").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines, ["error: \(root.appendingPathComponent("nope").path): no such run directory"])
    }
}
