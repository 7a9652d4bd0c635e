import AETrainCore
import XCTest

/// The hand-written backward pass against central finite differences, in double precision,
/// on small random problems with W, b and a nonzero: each term alone and the full loss.
/// `SparseKernelGradientCheckTests` runs every check again on the sparse kernels.
class GradientCheckTests: XCTestCase {
    let shape = ModelShape(d: 6, h: 5)
    let m = 9
    /// The kernels under test.
    var stepOptions: StepOptions { StepOptions(kernels: .dense, overlap: false) }

    /// A random problem: data (m, d) and parameters with every tensor nonzero. b is shifted
    /// up so that every unit is active on some examples (μ_j > 0).
    func makeProblem(seed: UInt64) -> (x: [Double], theta: [Double]) {
        var rng = Xoshiro256(seed: seed)
        let layout = ParameterLayout(shape)
        let x = (0..<(m * shape.d)).map { _ in rng.normal() }
        var theta = (0..<layout.count).map { _ in 0.4 * rng.normal() }
        for i in layout.b { theta[i] += 0.3 }
        return (x, theta)
    }

    /// Loss terms and gradient at θ with one process, through the same `DistributedStep`
    /// that training uses.
    func evaluate(_ theta: [Double], x: [Double], settings: ObjectiveSettings) throws -> (ObjectiveTerms, [Double]) {
        let store = ParameterStore<Double>(layout: ParameterLayout(shape))
        for (i, v) in theta.enumerated() { store.params[i] = v }
        let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(), options: stepOptions)
        let terms = try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
        return (terms, (0..<theta.count).map { store.grads[$0] })
    }

    /// Checks ∇f against central differences of f for every parameter.
    func check(name: String, seed: UInt64, settings: ObjectiveSettings, analytic: [Double],
               value: ([Double]) throws -> Double, theta: [Double]) throws {
        let layout = ParameterLayout(shape)
        let step = 1e-6
        var worst = 0.0, worstAt = ""
        for (tensor, range) in [("V", layout.V), ("W", layout.W), ("b", layout.b), ("a", layout.a)] {
            var scale = 0.0
            for i in range { scale = max(scale, abs(analytic[i])) }
            for i in range {
                var plus = theta, minus = theta
                plus[i] += step
                minus[i] -= step
                let numeric = (try value(plus) - value(minus)) / (2 * step)
                let err = abs(numeric - analytic[i]) / max(scale, 1e-8)
                if err > worst { worst = err; worstAt = "\(tensor)[\(i - range.lowerBound)] analytic \(analytic[i]) numeric \(numeric)" }
            }
        }
        XCTAssertLessThan(worst, 1e-6, "\(name): worst relative error \(worst) at \(worstAt)")
    }

    func testFullLossGradient() throws {
        let settings = ObjectiveSettings(lambda: 0.7, epsilon: 0.05, eta: 0.3)
        let (x, theta) = makeProblem(seed: 1)
        let (_, g) = try evaluate(theta, x: x, settings: settings)
        try check(name: "loss", seed: 1, settings: settings, analytic: g,
                  value: { try self.evaluate($0, x: x, settings: settings).0.loss(settings) }, theta: theta)
    }

    /// Each term alone: the gradient with only that term switched on, minus the gradient of
    /// rec alone (rec is always present), against finite differences of the term's value.
    func testEachTermAlone() throws {
        let (x, theta) = makeProblem(seed: 2)
        let recOnly = ObjectiveSettings(lambda: 0, epsilon: 0, eta: 0)
        let (_, gRec) = try evaluate(theta, x: x, settings: recOnly)
        try check(name: "rec", seed: 2, settings: recOnly, analytic: gRec,
                  value: { try self.evaluate($0, x: x, settings: recOnly).0.rec }, theta: theta)

        let cases: [(String, ObjectiveSettings, KeyPath<ObjectiveTerms, Double>)] = [
            ("spa", ObjectiveSettings(lambda: 1, epsilon: 0, eta: 0), \.spa),
            ("ent", ObjectiveSettings(lambda: 0, epsilon: 1, eta: 0), \.ent),
            ("reg", ObjectiveSettings(lambda: 0, epsilon: 0, eta: 1), \.reg),
        ]
        for (name, settings, term) in cases {
            let (_, g) = try evaluate(theta, x: x, settings: settings)
            let termGradient = zip(g, gRec).map { $0 - $1 }
            XCTAssertTrue(termGradient.contains { abs($0) > 1e-6 }, "\(name) has a gradient")
            try check(name: name, seed: 2, settings: settings, analytic: termGradient,
                      value: { try self.evaluate($0, x: x, settings: settings).0[keyPath: term] }, theta: theta)
        }
    }

    /// The terms' values against a direct evaluation of the sheet's formulas.
    func testTermValuesMatchTheFormulas() throws {
        let settings = ObjectiveSettings(lambda: 1)
        let (x, theta) = makeProblem(seed: 3)
        let (terms, _) = try evaluate(theta, x: x, settings: settings)
        let l = ParameterLayout(shape), d = shape.d, h = shape.h
        var rec = 0.0, spa = 0.0, reg = 0.0
        var mu = [Double](repeating: 0, count: h)
        for i in 0..<m {
            var z = [Double](repeating: 0, count: h)
            for j in 0..<h {
                var p = theta[l.b.lowerBound + j]
                for k in 0..<d { p += x[i * d + k] * theta[l.V.lowerBound + k * h + j] }
                z[j] = max(0, p)
                spa += z[j] / Double(m)
                mu[j] += z[j] / Double(m)
            }
            for k in 0..<d {
                var xhat = theta[l.a.lowerBound + k]
                for j in 0..<h { xhat += z[j] * theta[l.W.lowerBound + j * d + k] }
                rec += (x[i * d + k] - xhat) * (x[i * d + k] - xhat) / Double(m)
            }
        }
        for i in l.W { reg += theta[i] * theta[i] }
        let ent = mu.reduce(0) { $0 + 1 / $1 }
        XCTAssertEqual(terms.rec, rec, accuracy: 1e-12 * rec)
        XCTAssertEqual(terms.spa, spa, accuracy: 1e-12 * spa)
        XCTAssertEqual(terms.ent, ent, accuracy: 1e-12 * ent)
        XCTAssertEqual(terms.reg, reg, accuracy: 1e-12 * reg)
    }

    /// The float32 path that trains agrees with the float64 path that was checked.
    func testFloatMatchesDouble() throws {
        let settings = ObjectiveSettings(lambda: 0.5)
        let (x, theta) = makeProblem(seed: 4)
        let (dTerms, dGrad) = try evaluate(theta, x: x, settings: settings)
        let store = ParameterStore<Float>(layout: ParameterLayout(shape))
        for (i, v) in theta.enumerated() { store.params[i] = Float(v) }
        let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(), options: stepOptions)
        let xf = x.map(Float.init)
        let fTerms = try xf.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
        XCTAssertEqual(fTerms.loss(settings), dTerms.loss(settings), accuracy: 1e-5 * dTerms.loss(settings))
        let scale = dGrad.map(abs).max() ?? 1
        for i in 0..<dGrad.count {
            XCTAssertEqual(Double(store.grads[i]), dGrad[i], accuracy: 1e-5 * scale, "parameter \(i)")
        }
    }

    /// A unit with no activity in the batch: the floored entropy stays finite, and so does
    /// the gradient (PyTorch gives ∞ and then NaN here).
    func testDeadUnitStaysFinite() throws {
        let settings = ObjectiveSettings(lambda: 1, entropyFloor: 1e-6)
        var (x, theta) = makeProblem(seed: 5)
        let l = ParameterLayout(shape)
        theta[l.b.lowerBound] = -1e3  // unit 0 never fires
        let (terms, g) = try evaluate(theta, x: x, settings: settings)
        x = []
        XCTAssertTrue(terms.ent.isFinite)
        // The dead unit adds the constant 1/δ to the objective; the logged ent leaves it out.
        XCTAssertLessThan(terms.ent, 1e6)
        XCTAssertGreaterThan(terms.ent, 0)
        XCTAssertTrue(g.allSatisfy(\.isFinite))
    }

    /// Rows of one batch split across "ranks" give the same sums as the whole batch, when each
    /// part keeps the global m as divisor (what the allreduce then adds up).
    func testPartialSumsAddUp() throws {
        let settings = ObjectiveSettings(lambda: 0.3, epsilon: 0, eta: 0)
        let (x, theta) = makeProblem(seed: 6)
        let (whole, gWhole) = try evaluate(theta, x: x, settings: settings)
        var sum = [Double](repeating: 0, count: gWhole.count)
        var rec = 0.0
        for part in [0..<4, 4..<4, 4..<m] {
            let store = ParameterStore<Double>(layout: ParameterLayout(shape))
            for (i, v) in theta.enumerated() { store.params[i] = v }
            let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(), options: stepOptions)
            let rows = Array(x[(part.lowerBound * shape.d)..<(part.upperBound * shape.d)]) + [0]
            let t = try rows.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: part.count, m: m) }
            rec += t.rec
            for i in 0..<sum.count { sum[i] += store.grads[i] }
        }
        XCTAssertEqual(rec, whole.rec, accuracy: 1e-12 * whole.rec)
        for i in 0..<sum.count { XCTAssertEqual(sum[i], gWhole[i], accuracy: 1e-12) }
    }
}

/// The same checks through the sparse kernels (`Objective+Sparse.swift`). Listed one by one:
/// XCTest on Linux does not discover inherited test methods.
final class SparseKernelGradientCheckTests: GradientCheckTests {
    override var stepOptions: StepOptions { StepOptions(kernels: .sparse, overlap: false) }
    override func testFullLossGradient() throws { try super.testFullLossGradient() }
    override func testEachTermAlone() throws { try super.testEachTermAlone() }
    override func testTermValuesMatchTheFormulas() throws { try super.testTermValuesMatchTheFormulas() }
    override func testFloatMatchesDouble() throws { try super.testFloatMatchesDouble() }
    override func testDeadUnitStaysFinite() throws { try super.testDeadUnitStaysFinite() }
    override func testPartialSumsAddUp() throws { try super.testPartialSumsAddUp() }
}
