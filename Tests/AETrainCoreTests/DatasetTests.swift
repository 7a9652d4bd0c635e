import AETrainCore
import Foundation
import XCTest

final class DatasetTests: XCTestCase {
    func testShardsCoverEveryRowOnce() {
        for n in [1, 7, 100, 13233] {
            for p in 1...min(n, 6) {
                let ranges = (0..<p).map { DatasetShard.shardRange(examples: n, rank: $0, size: p) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, n)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual((ranges.map(\.count).max() ?? 0) - (ranges.map(\.count).min() ?? 0), 1)
            }
        }
    }

    /// Standardized as the sheet does: every pixel's mean is 0 and the std of all entries is 1.
    func testStandardizationMatchesTheSheet() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-std-\(UUID().uuidString).npy")
        defer { try? FileManager.default.removeItem(at: url) }
        var rng = Xoshiro256(seed: 3)
        let n = 30, d = 12
        let raw = (0..<(n * d)).map { i in Float(2 + 3 * rng.normal() + Double(i % d)) }
        try raw.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [n, 3, 4], to: url) }
        let shard = try DatasetShard.load(.npy(path: url.path), imageShape: nil, comm: SingleProcess())
        XCTAssertEqual(shard.rows, 0..<n)
        XCTAssertEqual(shard.info.imageShape, ImageShape(height: 3, width: 4))
        var total = 0.0
        for k in 0..<d {
            var mean = 0.0
            for i in 0..<n { mean += Double(shard.values[i * d + k]) / Double(n) }
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
        }
        for v in shard.values.prefix(n * d) { total += Double(v) * Double(v) }
        XCTAssertEqual((total / Double(n * d)).squareRoot(), 1, accuracy: 1e-5)
        // Against the formula on the raw values.
        let mean0 = (0..<n).map { Double(raw[$0 * d]) }.reduce(0, +) / Double(n)
        XCTAssertEqual(Double(shard.values[0]), (Double(raw[0]) - mean0) / shard.info.std, accuracy: 1e-5)
    }

    func testSyntheticRowsDependOnlyOnIndexAndSeed() throws {
        let spec = SyntheticSpec(examples: 10, shape: ImageShape(height: 4, width: 5))
        var a = [Float](repeating: 0, count: 20), b = a, c = a
        a.withUnsafeMutableBufferPointer { spec.generate(row: 3, seed: 1, into: $0.baseAddress!) }
        b.withUnsafeMutableBufferPointer { spec.generate(row: 3, seed: 1, into: $0.baseAddress!) }
        c.withUnsafeMutableBufferPointer { spec.generate(row: 4, seed: 1, into: $0.baseAddress!) }
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertThrowsError(try SyntheticSpec.parse("synthetic:10,0,5"))
        XCTAssertNil(try SyntheticSpec.parse("faces.npy"))
    }

    /// `--data embedded` names the embedded faces for every command, as no `--data` does.
    func testEmbeddedArgumentMeansTheEmbeddedFaces() throws {
        XCTAssertEqual(try DataSource(argument: "embedded", seed: 0), .embedded)
        XCTAssertEqual(try DataSource(argument: nil, seed: 0), .embedded)
        XCTAssertEqual(try DataSource(argument: "./embedded", seed: 0), .npy(path: "./embedded"))
        XCTAssertEqual(try DataSource(argument: "embedded.npy", seed: 0), .npy(path: "embedded.npy"))
    }

    /// A resize far beyond 1 is refused before the image shape is computed (found by the
    /// property test: Int(1e308 · 125) used to trap).
    func testHugeLFWResizeIsAnErrorNotATrap() {
        for resize in [1e308, .infinity, -.infinity, .nan, 0, 2] {
            XCTAssertThrowsError(try LFWSettings(resize: resize).validate(), "\(resize)")
        }
        XCTAssertNoThrow(try LFWSettings(resize: 0.3).validate())
    }
}
