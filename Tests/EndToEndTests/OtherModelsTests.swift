import AETrainCore
import Foundation
import XCTest

/// Sparse coding, the tied linear autoencoder and PCA through the binary: the same results
/// with 1, 2 and 4 ranks, PCA against numpy, and compare/report over every model.
final class OtherModelsTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("models") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func floats(_ url: URL) throws -> [Float] {
        let r = try NPYReader(path: url.path)
        var v = [Float](repeating: 0, count: r.header.shape.reduce(1, *))
        try v.withUnsafeMutableBufferPointer { try r.readRows(0..<r.header.rowCount, into: $0) }
        return v
    }

    func relative(_ a: [Float], _ b: [Float]) -> Double {
        var diff = 0.0, norm = 0.0
        for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); norm += Double(x) * Double(x) }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    /// Rows of `a` and `b` ((k, d) row-major): the largest difference of a row of `b` from the
    /// same row of `a` or its negative, whichever is nearer (components are defined up to sign).
    func largestDifferenceUpToSign(_ a: [Float], _ b: [Float], rows k: Int) -> Double {
        guard a.count == b.count, k > 0, a.count % k == 0 else { return .infinity }
        let d = a.count / k
        var worst = 0.0
        for row in 0..<k {
            var same = 0.0, flipped = 0.0
            for j in row * d..<(row + 1) * d {
                same = max(same, Double(abs(a[j] - b[j])))
                flipped = max(flipped, Double(abs(a[j] + b[j])))
            }
            worst = max(worst, min(same, flipped))
        }
        return worst
    }

    func testSameResultsWithOneTwoAndFourRanks() throws {
        let runs: [(String, [String], String, Double)] = [
            ("sc", ["train", "--model", "sparse-coding", "--lambda", "1", "--eta", "0.01", "--hidden", "64", "--iterations", "5"], "dictionary.npy", 1e-3),
            ("tied", ["train", "--model", "tied-linear", "--hidden", "8", "--lr", "1e-3", "--iterations", "500"], "W.npy", 2e-2),
            ("pca", ["pca", "--components", "8"], "explained_variance.npy", 1e-5),
        ]
        for (name, args, file, tolerance) in runs {
            var outputs: [[Float]] = []
            var components: [[Float]] = []
            for ranks in [1, 2, 4] {
                let out = dir.appendingPathComponent("\(name)\(ranks)")
                let r = try Harness.mpirun(ranks, args + ["--quiet", "--out", out.path])
                XCTAssertEqual(r.status, 0, "\(name) on \(ranks): \(r.stderr)")
                outputs.append(try floats(out.appendingPathComponent(file)))
                if name == "pca" { components.append(try floats(out.appendingPathComponent("components.npy"))) }
            }
            for (i, o) in outputs.enumerated().dropFirst() {
                XCTAssertLessThan(relative(outputs[0], o), tolerance, "\(name): \([1, 2, 4][i]) ranks vs 1")
            }
            // The components too, each up to sign: unit vectors, so 1e-4 is float rounding of the
            // covariance summed in another order (the 8 leading eigenvalues are well separated).
            for (i, c) in components.enumerated().dropFirst() {
                XCTAssertEqual(c.count, 8 * 625)
                XCTAssertLessThan(largestDifferenceUpToSign(components[0], c, rows: 8), 1e-4, "pca components: \([1, 2, 4][i]) ranks vs 1")
            }
        }
    }

    func testPCAMatchesNumpyAndTiedLinearFindsTheSubspace() throws {
        let pca = dir.appendingPathComponent("pca"), tied = dir.appendingPathComponent("tied")
        XCTAssertEqual(try Harness.aetrain(["pca", "--quiet", "--components", "10", "--out", pca.path]).status, 0)
        let data = Harness.products.appendingPathComponent("aetrain_AETrainCore.resources/lfw_faces_25x25.npy")
        let py = try Harness.python("""
            import numpy as np
            X = np.load('\(data.path)').reshape(100, -1).astype(np.float64)
            X = X - X.mean(axis=0); X = X / X.std()
            # The reference: numpy's SVD of the standardized data, X = U S Vt; the covariance's
            # eigenvalues are S² / N and its eigenvectors the rows of Vt.
            _, S, Vt = np.linalg.svd(X, full_matrices=False)
            w, R = (S ** 2 / len(X))[:10], Vt[:10]
            ev = np.load('\(pca.path)/explained_variance.npy'); C = np.load('\(pca.path)/components.npy')
            assert C.shape == R.shape and ev.shape == w.shape, (C.shape, ev.shape)
            # Each component against the reference's, up to sign, entry by entry.
            sign = np.sign(np.sum(C * R, axis=1))[:, None]
            print(np.abs(ev - w).max() / w[0], np.abs(C - sign * R).max())
            """)
        let v = py.stdout.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(v.count, 2, py.stdout + py.stderr)
        XCTAssertLessThan(v.first ?? 1, 1e-5, "eigenvalues")
        XCTAssertLessThan(v.last ?? 1, 1e-4, "components up to sign, largest entry difference (unit vectors)")

        let r = try Harness.aetrain(["train", "--model", "tied-linear", "--hidden", "4", "--lr", "3e-3", "--iterations", "3000", "--out", tied.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let cosines = try floats(tied.appendingPathComponent("subspace_cosines.npy"))
        XCTAssertEqual(cosines.count, 4)
        XCTAssertTrue(cosines.allSatisfy { $0 > 0.999 }, "\(cosines)")
    }

    func testCompareAndReportAcceptEveryModel() throws {
        let sae = dir.appendingPathComponent("sae"), sc = dir.appendingPathComponent("sc")
        let tied = dir.appendingPathComponent("tied"), pca = dir.appendingPathComponent("pca")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--lambda", "1", "--iterations", "100", "--out", sae.path]).status, 0)
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--model", "sparse-coding", "--lambda", "1", "--eta", "0.01", "--hidden", "64", "--iterations", "3", "--out", sc.path]).status, 0)
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--model", "tied-linear", "--hidden", "16", "--iterations", "100", "--out", tied.path]).status, 0)
        XCTAssertEqual(try Harness.aetrain(["pca", "--quiet", "--components", "16", "--out", pca.path]).status, 0)
        let runs = [sae.path, sc.path, tied.path, pca.path]
        let c = try Harness.aetrain(["compare"] + runs + ["--out", dir.appendingPathComponent("cmp").path])
        XCTAssertEqual(c.status, 0, c.stderr)
        let html = dir.appendingPathComponent("all.html")
        let r = try Harness.aetrain(["report"] + runs + ["--out", html.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = try String(contentsOf: html, encoding: .utf8)
        for label in ["sae (λ = 1.0)", "sc (sparse-coding, λ = 1.0)", "tied (tied-linear, k = 16)", "pca (PCA, k = 16)"] {
            XCTAssertTrue(text.contains(label), label)
        }
        XCTAssertEqual(text.components(separatedBy: "src=\"data:image/png;base64,").count - 1, 5, "4 filter mosaics and the dataset's")
    }
}
