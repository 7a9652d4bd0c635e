import AETrainCore
import XCTest

final class SamplerTests: XCTestCase {
    func draw(_ sampler: inout GlobalBatchSampler) -> [Int32] {
        var out = [Int32](repeating: -1, count: sampler.batchSize)
        out.withUnsafeMutableBufferPointer { sampler.next(into: $0.baseAddress!) }
        return out
    }

    func testBatchesAreDistinctInRangeAndReproducible() {
        var a = GlobalBatchSampler(exampleCount: 50, batchSize: 20, seed: 7)
        var b = GlobalBatchSampler(exampleCount: 50, batchSize: 20, seed: 7)
        var c = GlobalBatchSampler(exampleCount: 50, batchSize: 20, seed: 8)
        var differs = false
        for _ in 0..<100 {
            let x = draw(&a), y = draw(&b), z = draw(&c)
            XCTAssertEqual(x, y)
            XCTAssertEqual(Set(x).count, 20, "without replacement")
            XCTAssertTrue(x.allSatisfy { $0 >= 0 && $0 < 50 })
            differs = differs || x != z
        }
        XCTAssertTrue(differs, "another seed, another sequence")
    }

    func testEveryExampleIsDrawnEvenly() {
        var s = GlobalBatchSampler(exampleCount: 10, batchSize: 3, seed: 1)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<10_000 { for i in draw(&s) { counts[Int(i)] += 1 } }
        // Each example is in a batch with probability 0.3: 3000 ± a few standard deviations (≈46).
        for c in counts { XCTAssertEqual(Double(c), 3000, accuracy: 250) }
    }

    func testWholeDatasetBatchIsAPermutation() {
        var s = GlobalBatchSampler(exampleCount: 100, batchSize: 100, seed: 0)
        XCTAssertEqual(Set(draw(&s)), Set(0..<100))
    }
}
