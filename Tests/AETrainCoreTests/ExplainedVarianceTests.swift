import AETrainCore
import XCTest

/// Explained variance about the mean of the rows evaluated, from double sums, against a
/// two-pass computation written out here, on data whose mean is far larger than their spread
/// (where Σ‖x‖² − m‖x̄‖² in float32 would cancel to noise).
final class ExplainedVarianceTests: XCTestCase {
    func testSumOfSquaresAboutTheMean() {
        let (n, d) = (37, 5)
        var rng = Xoshiro256(seed: 4)
        let x = (0..<(n * d)).map { i in Float(1000 + Double(i % d) * 50 + rng.normal()) }
        // Two passes, in double: the mean, then the squares about it.
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for k in 0..<d { mean[k] += Double(x[i * d + k]) / Double(n) } }
        var expected = 0.0
        for i in 0..<n { for k in 0..<d { expected += (Double(x[i * d + k]) - mean[k]) * (Double(x[i * d + k]) - mean[k]) } }

        var sums = HeldOutSums(units: 0, d: d)
        x.withUnsafeBufferPointer { p in
            sums.addSquares(rows: p.baseAddress!, count: 20)
            sums.addSquares(rows: p.baseAddress! + 20 * d, count: n - 20)
        }
        let centred = sums.columnSums.withUnsafeBufferPointer {
            BatchSquares.centred(squaredNorm: sums.squaredNorm, columnSums: $0.baseAddress!, count: Double(n), d: d)
        }
        XCTAssertEqual(centred, expected, accuracy: 1e-9 * expected)
        XCTAssertGreaterThan(sums.squaredNorm, 1e4 * expected, "the case is one of heavy cancellation")
    }

    /// The training batch's EV through a model: 1 − SSE / Σ‖x_i − x̄‖² of that batch, the
    /// batch's rows taken from the shard by the sampler's indices.
    func testTrainingBatchExplainedVarianceIsAboutTheBatchMean() throws {
        let spec = SyntheticSpec(examples: 60, shape: ImageShape(height: 3, width: 4))
        let shard = try DatasetShard.load(.synthetic(spec, seed: 1), imageShape: nil, comm: SingleProcess(),
                                          normalization: .compute(.none))
        var settings = TrainSettings()
        settings.hidden = 8
        settings.batchSize = 15
        settings.normalize = Normalization.Kind.none
        settings.objective = ObjectiveSettings(lambda: 0.1)
        let model = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess())
        var sampler = model.sampler
        var indices = [Int32](repeating: 0, count: 15)
        indices.withUnsafeMutableBufferPointer { sampler.next(into: $0.baseAddress!) }
        let d = shard.d
        var rows = [Float](repeating: 0, count: 15 * d)
        rows.withUnsafeMutableBufferPointer { p in for (i, r) in indices.enumerated() { shard.copyRow(Int(r), to: p.baseAddress! + i * d) } }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<15 { for k in 0..<d { mean[k] += Double(rows[i * d + k]) / 15 } }
        var sst = 0.0, norm = 0.0
        for i in 0..<15 {
            for k in 0..<d {
                let v = Double(rows[i * d + k])
                sst += (v - mean[k]) * (v - mean[k]); norm += v * v
            }
        }
        let record = try model.iterate(0, stop: false).record
        let sse = record.rec * 15
        XCTAssertEqual(record.explainedVariance ?? .nan, 1 - sse / sst, accuracy: 1e-9)
        XCTAssertEqual(record.explainedSquaredNorm ?? .nan, 1 - sse / norm, accuracy: 1e-9)
        XCTAssertTrue(model.columns.contains(.esn), "data not centred: the squared norm's column too")
    }
}
