import AETrainCore
import Foundation
import XCTest

/// The sheet's Exercises 1 and 2, checked against their derivations.
final class OtherModelTests: XCTestCase {
    /// A dataset written to disk and loaded (standardized) as training would: N × 8 with one
    /// dominant direction, so the first principal component is well separated.
    func shard(n: Int = 400, seed: UInt64 = 1) throws -> DatasetShard {
        var rng = Xoshiro256(seed: seed)
        let u: [Double] = [0.5, -0.3, 0.2, 0.6, -0.1, 0.35, 0.25, -0.25]
        let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var values: [Float] = []
        for _ in 0..<n {
            let z = 3 * rng.normal()
            for k in 0..<8 { values.append(Float(z * u[k] / norm + 0.5 * rng.normal())) }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try values.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [n, 2, 4], to: url) }
        return try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess())
    }

    func testTiedLinearGradientMatchesFiniteDifferences() {
        let (m, d, k) = (7, 5, 3)
        var rng = Xoshiro256(seed: 4)
        let x = (0..<(m * d)).map { _ in rng.normal() }
        let w = (0..<(d * k)).map { _ in 0.5 * rng.normal() }
        func loss(_ w: [Double]) -> (Double, [Double]) {
            var g = [Double](repeating: 0, count: d * k), s = [Double](repeating: 0, count: m * k), r = [Double](repeating: 0, count: m * d), rw = s
            let sse = TiedLinear.lossAndGradient(grad: &g, s: &s, r: &r, rw: &rw, x: x, W: w, mr: m, m: m, d: d, k: k)
            return (sse / Double(m), g)
        }
        let (_, g) = loss(w)
        for i in 0..<(d * k) {
            var p = w, q = w
            p[i] += 1e-6; q[i] -= 1e-6
            let numeric = (loss(p).0 - loss(q).0) / 2e-6
            XCTAssertEqual(g[i], numeric, accuracy: 1e-6 * max(1, abs(numeric)), "W[\(i)]")
        }
    }

    /// With one hidden unit, w/‖w‖ is the first principal component and ‖w‖ → 1.
    func testOneUnitTiedAutoencoderFindsTheFirstComponent() throws {
        let data = try shard()
        var settings = TrainSettings()
        settings.hidden = 1
        settings.batchSize = 100
        settings.adam.learningRate = 3e-3
        let model = try TiedLinearModel(shard: data, settings: settings, comm: SingleProcess())
        for i in 0..<4000 { _ = try model.iterate(i, stop: false) }
        let W = Array(UnsafeBufferPointer(start: model.store.params, count: 8))
        let pca = try PrincipalComponents.compute(data, components: 1, comm: SingleProcess())
        XCTAssertGreaterThan(pca.eigenvalues[0], 3 * pca.eigenvalues[1], "a clear eigengap")
        let w = W.map(Double.init), norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let cosine = abs(zip(w, pca.components[0]).reduce(0) { $0 + $1.0 * $1.1 }) / norm
        XCTAssertGreaterThanOrEqual(cosine, 0.999)
        XCTAssertEqual(norm, 1, accuracy: 0.01)
        XCTAssertEqual(pca.subspaceCosines(W, d: 8, k: 1)[0], cosine, accuracy: 1e-9)
    }

    func sparseCoding(lambda: Double = 0.3, eta: Double = 0.1) throws -> SparseCoding {
        let data = try shard(n: 60, seed: 2)
        return try SparseCoding(shard: data, hidden: 6, lambda: lambda, eta: eta, seed: 3, comm: SingleProcess())
    }

    /// Exercise 1(a): for fixed sources, W = Σ_XS (Σ_SS + ηI)⁻¹ zeroes ∂J/∂W.
    func testClosedFormDictionaryZeroesTheGradient() throws {
        let sc = try sparseCoding()
        try sc.updateSourcesFISTA(steps: 50)
        let before = try sc.dictionaryGradient().map(abs).max() ?? 0
        try sc.updateDictionary()
        let after = try sc.dictionaryGradient().map(abs).max() ?? 1
        XCTAssertGreaterThan(before, 1e-3)
        XCTAssertLessThan(after, 1e-10 * max(1, before))
    }

    /// FISTA's codes satisfy the L1 optimality conditions of ‖x − W s‖² + λ‖s‖₁:
    /// 2[Wᵀ(W s − x)]_j = −λ sign(s_j) where s_j ≠ 0, and |2[Wᵀ(W s − x)]_j| ≤ λ where s_j = 0.
    func testFISTASatisfiesTheL1OptimalityConditions() throws {
        let sc = try sparseCoding()
        try sc.updateSourcesFISTA(steps: 5000)
        let (d, h, n) = (sc.d, sc.h, sc.n)
        var zeros = 0
        for i in 0..<n {
            for j in 0..<h {
                var g = 0.0
                for k in 0..<d {
                    var wsx = -sc.x[i * d + k]
                    for l in 0..<h { wsx += sc.W[k * h + l] * sc.S[i * h + l] }
                    g += 2 * sc.W[k * h + j] * wsx
                }
                let s = sc.S[i * h + j]
                if s != 0 { XCTAssertEqual(g, -sc.lambda * (s > 0 ? 1 : -1), accuracy: 1e-6, "example \(i), unit \(j)") }
                else { XCTAssertLessThanOrEqual(abs(g), sc.lambda + 1e-6); zeros += 1 }
            }
        }
        XCTAssertGreaterThan(zeros, 0, "some codes are exactly zero")
    }

    /// J never increases across alternations, with either source update.
    func testObjectiveNeverIncreases() throws {
        for update in SparseCodingSettings.SourceUpdate.allCases {
            let sc = try sparseCoding()
            var previous = try sc.objective().J
            for _ in 0..<15 {
                switch update {
                case .fista: try sc.updateSourcesFISTA(steps: 20)
                case .relaxed: try sc.updateSourcesRelaxed()
                }
                let afterSources = try sc.objective().J
                XCTAssertLessThanOrEqual(afterSources, previous * (1 + 1e-12), "\(update): source step")
                try sc.updateDictionary()
                let afterDictionary = try sc.objective().J
                XCTAssertLessThanOrEqual(afterDictionary, afterSources * (1 + 1e-12), "\(update): dictionary step")
                previous = afterDictionary
            }
        }
    }
}
