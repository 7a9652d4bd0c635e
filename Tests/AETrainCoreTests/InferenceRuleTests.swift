import AETrainCore
import XCTest

/// `InferenceRule.apply` against the rules written out directly: topk by sorting each row
/// (value descending, then unit ascending), the threshold rules entry by entry. Values are drawn
/// from a few levels, so that rows have many ties, zeros and negatives.
final class InferenceRuleTests: XCTestCase {
    func rows(m: Int, h: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<(m * h)).map { _ in Float(rng.below(9) - 4) * 0.25 }
    }

    func applied(_ rule: InferenceRule, _ p: [Float], h: Int) -> [Float] {
        var z = p
        z.withUnsafeMutableBufferPointer { rule.apply($0.baseAddress!, rows: p.count / h, h: h) }
        return z
    }

    func testTopKKeepsTheKLargestWithTiesToTheLowerUnit() {
        let h = 13
        for (k, seed) in [(1, 1), (3, 2), (5, 3), (12, 4), (13, 5)] as [(Int, UInt64)] {
            let p = rows(m: 40, h: h, seed: seed)
            var expected = [Float](repeating: 0, count: p.count)
            for i in 0..<40 {
                let r = (0..<h).map { max(p[i * h + $0], 0) }
                let order = (0..<h).sorted { r[$0] != r[$1] ? r[$0] > r[$1] : $0 < $1 }
                for j in order.prefix(k) { expected[i * h + j] = r[j] }
            }
            XCTAssertEqual(applied(.topk(k: k), p, h: h), expected, "k = \(k)")
        }
        // All equal: the first k units.
        XCTAssertEqual(applied(.topk(k: 2), [0.5, 0.5, 0.5, 0.5], h: 4), [0.5, 0.5, 0, 0])
    }

    func testThresholdRulesAndRelu() {
        let h = 7, p = rows(m: 30, h: h, seed: 9)
        let theta: [Float] = [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]
        XCTAssertEqual(applied(.relu, p, h: h), p.map { max($0, 0) })
        for t: Float in [-0.5, 0, 0.25, 0.5] {
            XCTAssertEqual(applied(.batchtopk(threshold: t), p, h: h), p.map { max($0, 0) > t ? max($0, 0) : 0 }, "θ = \(t)")
        }
        // π·H(π − θ_j): strictly above θ_j, negative codes kept where θ_j < 0.
        let jump = applied(.jumprelu(thresholds: theta), p, h: h)
        XCTAssertEqual(jump, p.enumerated().map { $1 > theta[$0 % h] ? $1 : 0 })
        XCTAssertTrue(jump.contains { $0 < 0 })
    }
}
