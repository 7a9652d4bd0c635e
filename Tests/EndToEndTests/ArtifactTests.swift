import AETrainCore
import Foundation
import XCTest

/// What a run leaves behind, checked with independent readers (numpy, Pillow, safetensors).
final class ArtifactTests: XCTestCase {
    /// One short sparse run on 5 ranks, shared by the tests. Rank 0 holds examples 0..<20 and
    /// rank 1 20..<40, so the first 25 examples' activations are gathered from two ranks.
    static var run: URL?
    static var runError: String?

    override class func setUp() {
        super.setUp()
        do {
            let out = try Harness.temporaryDirectory("artifacts")
            let r = try Harness.mpirun(5, ["train", "--out", out.path, "--lambda", "1", "--iterations", "300", "--log-every", "100"])
            if r.status == 0 { run = out } else { runError = r.stderr }
        } catch { runError = "\(error)" }
    }

    override class func tearDown() {
        if let run { try? FileManager.default.removeItem(at: run) }
        super.tearDown()
    }

    func directory() throws -> URL {
        guard let run = Self.run else { throw UserError("the shared run failed: \(Self.runError ?? "?")") }
        return run
    }

    /// activations.npy holds relu(X V + b) for the first 25 examples, X standardized as the
    /// sheet does (computed here with numpy from the embedded file).
    func testActivationsAreTheFirstExamplesCodes() throws {
        let dir = try directory()
        let data = Harness.products.appendingPathComponent("aetrain_AETrainCore.resources/lfw_faces_25x25.npy")
        let r = try Harness.python("""
            import numpy as np
            d = '\(dir.path)'
            X = np.load('\(data.path)').reshape(100, -1).astype(np.float64)
            X = X - X.mean(axis=0); X = X / X.std()
            V, b = np.load(d + '/V.npy'), np.load(d + '/b.npy')
            Z = np.maximum(X[:25] @ V + b, 0)
            A = np.load(d + '/activations.npy')
            assert A.shape == (25, 400), A.shape
            print(np.abs(A - Z).max() / np.abs(Z).max(), (A > 0).mean())
            """)
        let values = r.stdout.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(values.count, 2, r.stdout)
        XCTAssertLessThan(values.first ?? 1, 1e-4, "relative difference")
        XCTAssertGreaterThan(values.last ?? 0, 0, "some units are active")
    }

    func testSafetensorsMatchTheNpyWeights() throws {
        let dir = try directory()
        let r = try Harness.python("""
            import numpy as np
            from safetensors.numpy import load_file
            t = load_file('\(dir.path)/model.safetensors')
            assert sorted(t) == ['V', 'W', 'a', 'b'], sorted(t)
            for k in t:
                n = np.load('\(dir.path)/' + k + '.npy')
                assert t[k].dtype == np.float32 and t[k].shape == n.shape and np.array_equal(t[k], n), k
            print('ok')
            """)
        XCTAssertEqual(r.stdout, "ok\n")
    }

    func testFilterMosaicShowsTheFirst64RowsOfW() throws {
        let dir = try directory()
        // 25×25 filters at zoom 3 in 8 columns with 1-pixel separators: 8·75 + 9 = 609 pixels square.
        let r = try Harness.python("""
            import numpy as np
            from PIL import Image
            im = Image.open('\(dir.path)/filters.png'); a = np.asarray(im).astype(float)
            W = np.load('\(dir.path)/W.npy')
            print(im.mode, im.size[0], im.size[1])
            worst = 0
            for t in range(64):
                f = W[t].reshape(25, 25); f = (f - f.min()) / (f.max() - f.min()) * 255
                y0, x0 = 1 + (t // 8) * 76, 1 + (t % 8) * 76
                tile = a[y0:y0 + 75:3, x0:x0 + 75:3]
                worst = max(worst, np.abs(tile - f).max())
            print(worst, a[0].min(), a[:, 0].min())
            """)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "L 609 609")
        let numbers = lines.dropFirst().first?.split(separator: " ").compactMap { Double($0) } ?? []
        XCTAssertEqual(numbers.count, 3, r.stdout)
        XCTAssertLessThanOrEqual(numbers.first ?? 99, 0.501, "each tile is its filter scaled to 0…255")
        XCTAssertEqual(numbers.dropFirst().first, 255, "white separators")
    }

    /// A filter with a known pattern lands where expected in the mosaic (no training involved).
    func testKnownPatternAppearsInItsTile() throws {
        let shape = ModelShape(d: 12, h: 70)   // images 3x4, 70 filters: the mosaic shows 64
        var W = [Float](repeating: 0, count: shape.h * shape.d)
        for t in 0..<shape.h { W[t * shape.d + 0] = -1 }          // every filter: dark top-left pixel
        W[9 * shape.d + 7] = 5                                    // filter 9: bright pixel at row 1, column 3
        let weights = ModelWeights(shape: shape, V: .init(repeating: 0, count: shape.d * shape.h), W: W,
                                   b: .init(repeating: 0, count: shape.h), a: .init(repeating: 0, count: shape.d))
        let filters = (0..<shape.h).map { Array(weights.W[($0 * shape.d)..<(($0 + 1) * shape.d)]) }
        let image = ImageExport.filterMosaic(filters, shape: ImageShape(height: 3, width: 4))
        let zoom = Mosaic.zoom(for: ImageShape(height: 3, width: 4))   // 18
        XCTAssertEqual(zoom, 18)
        XCTAssertEqual(image.width, 8 * 4 * zoom + 9)
        XCTAssertEqual(image.height, 8 * 3 * zoom + 9)
        func pixel(tile: Int, row: Int, column: Int) -> UInt8 {
            let x = 1 + (tile % 8) * (4 * zoom + 1) + column * zoom + zoom / 2
            let y = 1 + (tile / 8) * (3 * zoom + 1) + row * zoom + zoom / 2
            return image.pixels[y * image.width + x]
        }
        XCTAssertEqual(pixel(tile: 9, row: 1, column: 3), 255)
        XCTAssertEqual(pixel(tile: 9, row: 0, column: 0), 0)
        XCTAssertEqual(pixel(tile: 10, row: 1, column: 3), 255, "a filter of 0s and one -1 scales its 0s to white")
        XCTAssertEqual(pixel(tile: 10, row: 0, column: 0), 0)
        XCTAssertEqual(image.pixels[0], 255, "separator")
    }

    func testDatasetMosaicIsTheFirstFaces() throws {
        let dir = try directory()
        let data = Harness.products.appendingPathComponent("aetrain_AETrainCore.resources/lfw_faces_25x25.npy")
        let r = try Harness.python("""
            import numpy as np
            from PIL import Image
            a = np.asarray(Image.open('\(dir.path)/dataset.png')).astype(float)
            X = np.load('\(data.path)')
            worst = 0
            for t in range(64):
                f = X[t]; f = (f - f.min()) / (f.max() - f.min()) * 255
                y0, x0 = 1 + (t // 8) * 76, 1 + (t % 8) * 76
                worst = max(worst, np.abs(a[y0:y0 + 75:3, x0:x0 + 75:3] - f).max())
            print(a.shape, worst)
            """)
        XCTAssertTrue(r.stdout.hasPrefix("(609, 609)"), r.stdout)
        let worst = Double(r.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 99
        XCTAssertLessThanOrEqual(worst, 0.501)
    }
}
