import AETrainCore
import Foundation
import XCTest

/// Each `--normalize` kind on a small file: its statistics over the training rows only, what
/// it does to an example, and `denormalize` undoing it.
final class NormalizationKindsTests: XCTestCase {
    func testEveryKindOverTheTrainingRows() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-norm-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        var rng = Xoshiro256(seed: 5)
        let n = 40, d = 6
        let raw = (0..<(n * d)).map { i in Float((1 + Double(i / d % 3)) * (rng.normal() + Double(i % d))) }
        try NPYWriter.write(raw, shape: [n, 2, 3], to: url)
        let rule = HeldOutSplit.Rule(fraction: 0.25, seed: 1)
        let training = try HeldOutSplit(examples: n, rule: rule).training.map(Int.init)
        XCTAssertEqual(training.count, 30)
        var mean = [Double](repeating: 0, count: d)
        for i in training { for k in 0..<d { mean[k] += Double(raw[i * d + k]) / 30 } }
        var squares = 0.0
        for i in training { for k in 0..<d { squares += pow(Double(raw[i * d + k]) - mean[k], 2) } }
        let std = (squares / Double(30 * d)).squareRoot()

        for kind in Normalization.Kind.allCases {
            let shard = try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess(),
                                              normalization: .compute(kind), holdOut: rule)
            XCTAssertEqual(shard.split?.training.map(Int.init), training)
            let n = shard.normalization
            XCTAssertEqual(n.kind, kind)
            XCTAssertEqual(shard.info.std, n.scale)
            for k in 0..<d {
                XCTAssertEqual(n.mean[k], kind == .sheet || kind == .center ? mean[k] : 0, accuracy: 1e-12)
            }
            XCTAssertEqual(n.scale, kind == .sheet ? std : 1, accuracy: 1e-12)
            for i in [0, 17, 39] {
                let x = (0..<d).map { Double(raw[i * d + $0]) }
                let norm = x.map { $0 * $0 }.reduce(0, +).squareRoot()
                for k in 0..<d {
                    let expected = switch kind {
                    case .sheet: (x[k] - mean[k]) / std
                    case .center: x[k] - mean[k]
                    case .none: x[k]
                    case .unitNorm: x[k] * Double(d).squareRoot() / norm
                    }
                    XCTAssertEqual(Double(shard.values[i * d + k]), expected, accuracy: 1e-5 * max(1, abs(expected)), "\(kind) \(i) \(k)")
                }
                var y = Array(shard.values[(i * d)..<((i + 1) * d)])
                y.withUnsafeMutableBufferPointer { shard.denormalize($0.baseAddress!, row: i, offset: [Float](repeating: 0, count: d)) }
                for k in 0..<d { XCTAssertEqual(Double(y[k]), x[k], accuracy: 1e-5 * max(1, abs(x[k])), "undo \(kind) \(i) \(k)") }
            }
        }
    }

    func testGivenStatisticsAreAppliedAndZeroVectorsRefused() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-norm-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        try NPYWriter.write([1, 2, 3, 4, 0, 0, 0, 0], shape: [2, 2, 2], to: url)
        let given = Normalization(kind: .sheet, mean: [1, 1, 1, 1], scale: 2)
        let shard = try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess(), normalization: .given(given))
        XCTAssertEqual(Array(shard.values), [0, 0.5, 1, 1.5, -0.5, -0.5, -0.5, -0.5])
        XCTAssertThrowsError(try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess(),
                                                   normalization: .compute(.unitNorm))) { error in
            XCTAssertTrue("\(error)".contains("example 1 is all zeros"), "\(error)")
        }
        XCTAssertThrowsError(try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess(),
                                                   normalization: .given(Normalization(kind: .center, mean: [0, 0], scale: 1)))) { error in
            XCTAssertTrue("\(error)".contains("examples have D = 4 values, but the model takes D = 2"), "\(error)")
        }
    }
}
