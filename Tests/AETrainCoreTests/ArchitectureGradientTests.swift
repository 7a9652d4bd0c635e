import AETrainCore
import XCTest

/// topk, batchtopk and jumprelu through the training step (`DistributedStep`, one process, in
/// double precision) against central finite differences where the function is
/// differentiable (away from the selection's and the thresholds' boundaries, which random
/// problems avoid), and JumpReLU's threshold gradient against the pseudo-derivatives
/// computed here from scratch. Dense and sparse kernels alike.
final class ArchitectureGradientTests: XCTestCase {
    let shape = ModelShape(d: 6, h: 10)
    let m = 9

    func architecture(_ a: ArchitectureSettings.Activation, k: Int = 3, auxK: Int = 0, auxCoef: Double = 0.5,
                      bandwidth: Double = 0.001) -> ArchitectureSettings {
        var s = ArchitectureSettings(activation: a)
        s.k = k; s.auxK = auxK; s.auxCoef = auxCoef; s.deadSteps = 5; s.bandwidth = bandwidth
        return s
    }

    func layout(_ a: ArchitectureSettings) -> ParameterLayout { ParameterLayout(shape, threshold: a.activation == .jumprelu) }

    /// Data and parameters with every tensor nonzero (θ around 0.1 for jumprelu).
    func problem(_ a: ArchitectureSettings, seed: UInt64) -> (x: [Double], theta: [Double]) {
        var rng = Xoshiro256(seed: seed)
        let l = layout(a)
        let x = (0..<(m * shape.d)).map { _ in rng.normal() }
        var theta = (0..<l.count).map { _ in 0.4 * rng.normal() }
        for i in l.b { theta[i] += 0.2 }
        if let t = l.tensors.first(where: { $0.name == "threshold" }) { for i in t.range { theta[i] = 0.1 + 0.05 * rng.normal() } }
        return (x, theta)
    }

    /// Terms and gradient at θ; `dead`: latents whose counters start at ⟨dead-steps⟩ (dead for this step).
    func evaluate(_ theta: [Double], x: [Double], _ a: ArchitectureSettings, lambda: Double = 0, dead: Set<Int> = [],
                  kernels: KernelChoice) throws -> (ObjectiveTerms, [Double]) {
        let l = layout(a)
        let store = ParameterStore<Double>(layout: l, reducedSlots: ArchitectureTerm.reducedSlots(for: a))
        for (i, v) in theta.enumerated() { store.params[i] = v }
        let step = DistributedStep(store: store, maxRows: m, settings: ObjectiveSettings(lambda: lambda, epsilon: 0, eta: 0),
                                   comm: SingleProcess(), options: StepOptions(kernels: kernels), architecture: a)
        step.latents?.restore(counters: (0..<shape.h).map { dead.contains($0) ? 5 : 0 }, steps: 5)
        let terms = try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
        return (terms, (0..<l.count).map { store.grads[$0] })
    }

    /// ∇f against central differences of f over the tensors named.
    func check(_ name: String, analytic: [Double], theta: [Double], layout l: ParameterLayout, tensors: [String] = ["V", "W", "b", "a"],
               value: ([Double]) throws -> Double) throws {
        let step = 1e-6
        var worst = 0.0, worstAt = ""
        for t in l.tensors where tensors.contains(t.name) {
            var scale = 1e-8
            for i in t.range { scale = max(scale, abs(analytic[i])) }
            for i in t.range {
                var plus = theta, minus = theta
                plus[i] += step; minus[i] -= step
                let numeric = (try value(plus) - value(minus)) / (2 * step)
                let err = abs(numeric - analytic[i]) / scale
                if err > worst { worst = err; worstAt = "\(t.name)[\(i - t.range.lowerBound)] analytic \(analytic[i]) numeric \(numeric)" }
            }
        }
        XCTAssertLessThan(worst, 1e-5, "\(name): worst relative error \(worst) at \(worstAt)")
    }

    func testTopKGradientFlowsThroughTheKeptEntries() throws {
        for kernels in [KernelChoice.dense, .sparse] {
            let a = architecture(.topk)
            let (x, theta) = problem(a, seed: 1)
            let (terms, g) = try evaluate(theta, x: x, a, kernels: kernels)
            XCTAssertEqual(terms.l0, 3, "k = 3 of 10 kept per example")
            XCTAssertEqual(terms.auxK, 0)
            try check("topk rec (\(kernels))", analytic: g, theta: theta, layout: layout(a)) {
                try self.evaluate($0, x: x, a, kernels: kernels).0.rec
            }
        }
    }

    /// AuxK from scratch: c·Σ_i ‖e0_i − ê_i(θ)‖² / Σ_i ‖x_i − x̄‖², e0 held fixed (no gradient
    /// through e), S_i the k_aux largest relu(π_ij) over the dead latents, ties to the lower index.
    func auxTerm(_ theta: [Double], e0: [Double], x: [Double], _ a: ArchitectureSettings, dead: Set<Int>) -> Double {
        let (d, h) = (shape.d, shape.h), l = layout(a)
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<m { for k in 0..<d { mean[k] += x[i * d + k] / Double(m) } }
        var sst = 0.0, total = 0.0
        for i in 0..<m {
            for k in 0..<d { sst += (x[i * d + k] - mean[k]) * (x[i * d + k] - mean[k]) }
            let pi = (0..<h).map { j in theta[l.b.lowerBound + j] + (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta[l.V.lowerBound + $1 * h + j] } }
            let chosen = dead.filter { pi[$0] > 0 }.sorted { pi[$0] > pi[$1] || (pi[$0] == pi[$1] && $0 < $1) }.prefix(a.resolvedAuxK(hidden: h))
            for k in 0..<d {
                let ehat = chosen.reduce(0.0) { $0 + pi[$1] * theta[l.W.lowerBound + $1 * d + k] }
                total += (e0[i * d + k] - ehat) * (e0[i * d + k] - ehat)
            }
        }
        return a.auxCoef * total / sst
    }

    /// e = x − x̂ at θ (the step's forward, z from its inference-free training rule for topk:
    /// TopK_k per row; batchtopk: the k·m largest over the batch), from scratch.
    func residual(_ theta: [Double], x: [Double], _ a: ArchitectureSettings) -> [Double] {
        let (d, h) = (shape.d, shape.h), l = layout(a)
        var pi = [Double](repeating: 0, count: m * h)
        for i in 0..<m { for j in 0..<h {
            pi[i * h + j] = theta[l.b.lowerBound + j] + (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta[l.V.lowerBound + $1 * h + j] }
        } }
        var keep = Set<Int>()
        if a.activation == .topk {
            for i in 0..<m {
                let row = (0..<h).filter { pi[i * h + $0] > 0 }.sorted { pi[i * h + $0] > pi[i * h + $1] || (pi[i * h + $0] == pi[i * h + $1] && $0 < $1) }
                for j in row.prefix(a.k) { keep.insert(i * h + j) }
            }
        } else {
            let all = (0..<(m * h)).filter { pi[$0] > 0 }.sorted { pi[$0] > pi[$1] || (pi[$0] == pi[$1] && $0 < $1) }
            keep = Set(all.prefix(a.k * m))
        }
        var e = [Double](repeating: 0, count: m * d)
        for i in 0..<m { for k in 0..<d {
            var xhat = theta[l.a.lowerBound + k]
            for j in 0..<h where keep.contains(i * h + j) { xhat += pi[i * h + j] * theta[l.W.lowerBound + j * d + k] }
            e[i * d + k] = x[i * d + k] - xhat
        } }
        return e
    }

    /// rec + c·AuxK with half the latents dead, and AuxK's own part of the gradient alone,
    /// against finite differences with e held at its value (the stop-gradient).
    func testAuxKGradient() throws {
        let dead: Set<Int> = [0, 2, 4, 6, 8]
        for kernels in [KernelChoice.dense, .sparse] {
            for activation in [ArchitectureSettings.Activation.topk, .batchtopk] {
                let a = architecture(activation, auxK: 2)
                let (x, theta) = problem(a, seed: 2)
                let e0 = residual(theta, x: x, a)
                let (terms, g) = try evaluate(theta, x: x, a, dead: dead, kernels: kernels)
                XCTAssertGreaterThan(terms.auxK, 0, "\(activation): dead latents fire on π")
                XCTAssertEqual(a.auxCoef * terms.auxK, auxTerm(theta, e0: e0, x: x, a, dead: dead), accuracy: 1e-10, "\(activation): AuxK's value")
                try check("\(activation) rec + c·AuxK (\(kernels))", analytic: g, theta: theta, layout: layout(a)) {
                    try self.evaluate($0, x: x, a, dead: dead, kernels: kernels).0.rec + self.auxTerm($0, e0: e0, x: x, a, dead: dead)
                }
                var off = a
                off.auxK = 0
                let (_, gRec) = try evaluate(theta, x: x, off, dead: dead, kernels: kernels)
                let auxGradient = zip(g, gRec).map { $0 - $1 }
                XCTAssertTrue(auxGradient.contains { abs($0) > 1e-6 }, "AuxK has a gradient")
                XCTAssertEqual(auxGradient[layout(a).a].map(abs).max() ?? 1, 0, "no bias in ê, no gradient through e: AuxK does not move a")
                try check("\(activation) c·AuxK alone (\(kernels))", analytic: auxGradient, theta: theta, layout: layout(a)) {
                    self.auxTerm($0, e0: e0, x: x, a, dead: dead)
                }
            }
        }
    }

    /// V, W, b, a against finite differences of rec + λ·L0 (L0 is flat there: ∂z/∂π = H(π − θ));
    /// θ against the pseudo-derivatives, computed here from the formulas:
    ///     dθ_j = Σ_i K((π_ij − θ_j)/ε) · (G_Z_ij·(−θ_j/ε) − λ/(m ε)),  G_Z = (2/m) R Wᵀ
    func testJumpReLUGradients() throws {
        let lambda = 0.3
        for kernels in [KernelChoice.dense, .sparse] {
            let a = architecture(.jumprelu, bandwidth: 0.4)  // wide: many entries within the band
            let l = layout(a)
            let (x, theta) = problem(a, seed: 3)
            let (terms, g) = try evaluate(theta, x: x, a, lambda: lambda, kernels: kernels)
            try check("jumprelu rec + λ·L0 (\(kernels))", analytic: g, theta: theta, layout: l) {
                try self.evaluate($0, x: x, a, lambda: lambda, kernels: kernels).0.loss(ObjectiveSettings(lambda: lambda, epsilon: 0, eta: 0),
                                                                                         architecture: a)
            }
            // The forward and the pseudo-derivatives from scratch.
            let (d, h) = (shape.d, shape.h)
            let V = l.V.lowerBound, W = l.W.lowerBound, b = l.b.lowerBound, av = l.a.lowerBound
            let th = l.tensors[4].range.lowerBound, eps = a.bandwidth
            var pi = [Double](repeating: 0, count: m * h), z = pi, R = [Double](repeating: 0, count: m * d)
            var l0 = 0.0
            for i in 0..<m {
                for j in 0..<h {
                    var p = theta[b + j]
                    for k in 0..<d { p += x[i * d + k] * theta[V + k * h + j] }
                    pi[i * h + j] = p
                    z[i * h + j] = p > theta[th + j] ? p : 0
                    if p > theta[th + j] { l0 += 1 / Double(m) }
                }
                for k in 0..<d {
                    var xhat = theta[av + k]
                    for j in 0..<h { xhat += z[i * h + j] * theta[W + j * d + k] }
                    R[i * d + k] = xhat - x[i * d + k]
                }
            }
            XCTAssertEqual(terms.l0, l0, accuracy: 1e-12)
            var inBand = 0
            for j in 0..<h {
                var expected = 0.0
                for i in 0..<m where abs(pi[i * h + j] - theta[th + j]) / eps < 0.5 {
                    inBand += 1
                    var gz = 0.0
                    for k in 0..<d { gz += 2 / Double(m) * R[i * d + k] * theta[W + j * d + k] }
                    expected += gz * (-theta[th + j] / eps) - lambda / (Double(m) * eps)
                }
                XCTAssertEqual(g[th + j], expected, accuracy: 1e-10 * max(1, abs(expected)), "dθ_\(j) (\(kernels))")
            }
            XCTAssertGreaterThan(inBand, 5, "the check covers entries within the band")
        }
    }

    /// TopK's tie rule: among equal values the lower unit index is kept; only positive entries.
    func testTopKSelectionBreaksTiesByTheLowerIndex() {
        let row: [Float] = [0.5, 2, 1, 2, -3, 1, 1, 0, 2]
        var heapUnits = [Int32](repeating: 0, count: 4), heapValues = [Float](repeating: 0, count: 4)
        var units = [Int32](repeating: -1, count: 4), values = [Float](repeating: 0, count: 4)
        func select(_ k: Int) -> [Int32] {
            let n = TopK.select(row, h: row.count, k: k, allowed: nil, heapUnits: &heapUnits, heapValues: &heapValues, units: &units, values: &values)
            return Array(units[0..<n])
        }
        XCTAssertEqual(select(2), [1, 3])
        XCTAssertEqual(select(4), [1, 2, 3, 8])
        let few: [Float] = [0, -1, 0.25, 0]
        let n = TopK.select(few, h: 4, k: 3, allowed: nil, heapUnits: &heapUnits, heapValues: &heapValues, units: &units, values: &values)
        XCTAssertEqual(Array(units[0..<n]), [2], "fewer positive entries than k: all of them")
    }
}
