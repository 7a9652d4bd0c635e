import AETrainCore
import XCTest

/// The sparse kernels (`Objective+Sparse.swift`) against the dense ones, which the gradient
/// checks cover, and the automatic choice between them.
final class SparseKernelTests: XCTestCase {

    /// A problem with W, b and a nonzero, where b_j is set so that about `density` of unit j's
    /// activations are nonzero (the (1 − density) quantile of its pre-activation).
    func makeProblem<T: BLASScalar>(_: T.Type, d: Int, h: Int, m: Int, density: Double, seed: UInt64) -> (x: [T], theta: [T]) {
        var rng = Xoshiro256(seed: seed)
        let layout = ParameterLayout(ModelShape(d: d, h: h))
        let x = (0..<(m * d)).map { _ in T(rng.normal()) }
        var theta = (0..<layout.count).map { _ in T(0.3 * rng.normal() / Double(d).squareRoot()) }
        let k = min(m - 1, Int((1 - density) * Double(m)))
        for j in 0..<h {
            var p: [T] = (0..<m).map { i in (0..<d).reduce(T(0)) { $0 + x[i * d + $1] * theta[layout.V.lowerBound + $1 * h + j] } }
            p.sort()
            theta[layout.b.lowerBound + j] = -p[k]
        }
        return (x, theta)
    }

    /// Terms and gradient through `DistributedStep` with the given kernels.
    func evaluate<T: BLASScalar>(_ theta: [T], x: [T], shape: ModelShape, m: Int, settings: ObjectiveSettings,
                                 options: StepOptions) throws -> (ObjectiveTerms, [T], sparseFraction: Double) {
        let store = ParameterStore<T>(layout: ParameterLayout(shape))
        for (i, v) in theta.enumerated() { store.params[i] = v }
        let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(), options: options)
        let terms = try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
        return (terms, (0..<theta.count).map { store.grads[$0] }, step.takeTimings().sparseFraction)
    }

    /// Largest |sparse − dense| per tensor, relative to the tensor's largest dense entry.
    func compare<T: BLASScalar>(_ sparse: [T], _ dense: [T], shape: ModelShape, tolerance: Double) {
        let l = ParameterLayout(shape)
        for (name, range) in [("dV", l.V), ("dW", l.W), ("db", l.b), ("da", l.a)] {
            let scale = range.map { abs(Double(dense[$0])) }.max() ?? 0
            let worst = range.map { abs(Double(sparse[$0]) - Double(dense[$0])) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(name) is nonzero")
            XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(name): largest difference \(worst), scale \(scale)")
        }
    }

    func testSparseMatchesDenseInDouble() throws {
        let shape = ModelShape(d: 40, h: 30), m = 25
        let settings = ObjectiveSettings(lambda: 0.7, epsilon: 0.05, eta: 0.3)
        for density in [0.04, 0.2, 0.6] {
            let (x, theta) = makeProblem(Double.self, d: shape.d, h: shape.h, m: m, density: density, seed: 11)
            let (dTerms, dGrad, dFraction) = try evaluate(theta, x: x, shape: shape, m: m, settings: settings, options: StepOptions(kernels: .dense))
            let (sTerms, sGrad, sFraction) = try evaluate(theta, x: x, shape: shape, m: m, settings: settings, options: StepOptions(kernels: .sparse))
            XCTAssertEqual(dFraction, 0)
            XCTAssertEqual(sFraction, 1)
            XCTAssertEqual(sTerms.l0, dTerms.l0)
            XCTAssertEqual(sTerms.l0 / Double(shape.h), density, accuracy: 0.05)
            for (a, b) in [(sTerms.rec, dTerms.rec), (sTerms.spa, dTerms.spa), (sTerms.ent, dTerms.ent), (sTerms.reg, dTerms.reg)] {
                XCTAssertEqual(a, b, accuracy: 1e-12 * max(abs(b), 1))
            }
            compare(sGrad, dGrad, shape: shape, tolerance: 1e-12)
        }
    }

    /// At the sheet's real size and a trained sparse model's density, in float32.
    func testSparseMatchesDenseInFloatAtTheSheetsSize() throws {
        let shape = ModelShape(d: 1036, h: 400), m = 100
        let settings = ObjectiveSettings(lambda: 1)
        let (x, theta) = makeProblem(Float.self, d: shape.d, h: shape.h, m: m, density: 0.015, seed: 12)
        let (dTerms, dGrad, _) = try evaluate(theta, x: x, shape: shape, m: m, settings: settings, options: StepOptions(kernels: .dense))
        let (sTerms, sGrad, _) = try evaluate(theta, x: x, shape: shape, m: m, settings: settings, options: StepOptions(kernels: .sparse))
        XCTAssertEqual(sTerms.loss(settings), dTerms.loss(settings), accuracy: 1e-5 * dTerms.loss(settings))
        compare(sGrad, dGrad, shape: shape, tolerance: 1e-4)
    }

    /// `auto` takes the sparse kernels at or below `sparseBelow` and the dense ones above.
    func testAutoChoosesByDensity() throws {
        let shape = ModelShape(d: 40, h: 30), m = 25
        let settings = ObjectiveSettings(lambda: 1)
        let auto = StepOptions(kernels: .auto, sparseBelow: 0.1)
        let (xLow, low) = makeProblem(Double.self, d: shape.d, h: shape.h, m: m, density: 0.04, seed: 13)
        XCTAssertEqual(try evaluate(low, x: xLow, shape: shape, m: m, settings: settings, options: auto).sparseFraction, 1)
        let (xHigh, high) = makeProblem(Double.self, d: shape.d, h: shape.h, m: m, density: 0.5, seed: 13)
        XCTAssertEqual(try evaluate(high, x: xHigh, shape: shape, m: m, settings: settings, options: auto).sparseFraction, 0)
    }

    /// The nonzeros of Z row by row, and a refusal beyond the capacity.
    func testActiveUnitsGather() {
        let z: [Float] = [0, 2, 0, 0,
                          0, 0, 0, 0,
                          1, 0, 0, 3]
        let full = ActiveUnits<Float>(maxRows: 3, capacity: 3)
        XCTAssertTrue(z.withUnsafeBufferPointer { full.gather(z: $0.baseAddress!, mr: 3, h: 4) })
        XCTAssertEqual(full.count, 3)
        let small = ActiveUnits<Float>(maxRows: 3, capacity: 2)
        XCTAssertFalse(z.withUnsafeBufferPointer { small.gather(z: $0.baseAddress!, mr: 3, h: 4) })
        XCTAssertEqual(small.count, 0)
    }
}
