import AETrainCore
import XCTest

final class AdamTests: XCTestCase {
    /// Three steps on a few parameters against the update rule written out in double.
    func testMatchesPyTorchRule() {
        var s = AdamSettings()
        s.learningRate = 0.01
        let grads: [[Double]] = [[0.5, -2, 1e-3], [0.4, -1, 0], [-0.3, 3, 2e-3]]
        var p: [Double] = [1, -1, 0.5], m = [0.0, 0, 0], v = [0.0, 0, 0]
        var ref = p, rm = m, rv = v
        for (t, g) in grads.enumerated() {
            Adam.step(params: &p, moment1: &m, moment2: &v, grads: g, count: 3, t: t + 1, settings: s)
            for i in 0..<3 {
                rm[i] = 0.9 * rm[i] + 0.1 * g[i]
                rv[i] = 0.999 * rv[i] + 0.001 * g[i] * g[i]
                let mhat = rm[i] / (1 - pow(0.9, Double(t + 1)))
                let vhat = rv[i] / (1 - pow(0.999, Double(t + 1)))
                ref[i] -= 0.01 * mhat / (vhat.squareRoot() + 1e-8)
            }
        }
        for i in 0..<3 { XCTAssertEqual(p[i], ref[i], accuracy: 1e-12) }
        // The first step moves every parameter with a nonzero gradient by about lr.
        var q: [Double] = [0], m1 = [0.0], v1 = [0.0]
        Adam.step(params: &q, moment1: &m1, moment2: &v1, grads: [123.0], count: 1, t: 1, settings: s)
        XCTAssertEqual(q[0], -0.01, accuracy: 1e-9)
    }
}
