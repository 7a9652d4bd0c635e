import AETrainCore
import XCTest

/// The fast step's threads (`ParallelLoop`): TopK's and AuxK's selections, the sparse
/// residual and backward by unit, Adam and the unit-norm rows split over 1, 2 or 3 threads
/// give the same bits, with enough latents that every thread gets several blocks of units.
/// topk's product X V is split by columns over the threads, each part one BLAS call, whose
/// rounding depends on the part's width (as a threaded BLAS product's does on its thread
/// count): its step agrees to float32 rounding, the others bit for bit.
final class KernelThreadsTests: XCTestCase {
    let shape = ModelShape(d: 8, h: 100)
    let m = 24

    func run(_ activation: ArchitectureSettings.Activation, kernels: KernelChoice, threads: Int, steps: Int = 4,
             shape: ModelShape? = nil, m: Int? = nil)
        throws -> (grads: [[UInt32]], terms: [ObjectiveTerms], checksum: UInt64) {
        let shape = shape ?? self.shape, m = m ?? self.m
        var a = ArchitectureSettings(activation: activation)
        a.k = 5; a.auxK = 6; a.deadSteps = 1
        let layout = ParameterLayout(shape, threshold: activation == .jumprelu)
        var rng = Xoshiro256(seed: 11)
        var theta = (0..<layout.count).map { _ in Float(0.3 * rng.normal()) }
        if activation == .jumprelu { for i in layout.tensors[4].range { theta[i] = 0.05 } }
        var out: (grads: [[UInt32]], terms: [ObjectiveTerms], checksum: UInt64) = ([], [], 0)
        do {
            let comm = SingleProcess()
            let store = ParameterStore<Float>(layout: layout, reducedSlots: ArchitectureTerm.reducedSlots(for: a))
            for (i, v) in theta.enumerated() { store.params[i] = v }
            let step = DistributedStep(store: store, maxRows: m, settings: ObjectiveSettings(lambda: 0.1, epsilon: 0, eta: 0), comm: comm,
                                       options: StepOptions(kernels: kernels, threads: threads), unitNormDecoder: true, architecture: a)
            var adam = AdamSettings()
            adam.learningRate = 0.01
            for t in 0..<steps {
                var data = Xoshiro256(seed: UInt64(200 + t))
                let x = (0..<(m * shape.d)).map { _ in Float(data.normal()) }
                out.terms.append(try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) })
                out.grads.append((0..<layout.count).map { store.grads[$0].bitPattern })
                try step.update(adam)
            }
            out.checksum = store.checksum()
        }
        return out
    }

    func testOneTwoAndThreeThreadsGiveTheSameBits() throws {
        for activation in [ArchitectureSettings.Activation.topk, .batchtopk, .jumprelu] {
            for kernels in [KernelChoice.sparse, .dense] {
                let one = try run(activation, kernels: kernels, threads: 1)
                XCTAssertTrue(one.terms.contains { $0.auxK > 0 } || activation == .jumprelu, "\(activation): AuxK ran")
                for threads in [2, 3] {
                    let many = try run(activation, kernels: kernels, threads: threads)
                    if activation == .topk {
                        for t in 0..<one.grads.count {
                            let a = many.grads[t].map { Float(bitPattern: $0) }, b = one.grads[t].map { Float(bitPattern: $0) }
                            let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                            XCTAssertLessThan(worst, 1e-4, "topk \(kernels): gradient of step \(t) on \(threads) threads")
                            XCTAssertEqual(many.terms[t].l0, one.terms[t].l0, "topk \(kernels): L0 of step \(t) on \(threads) threads")
                            XCTAssertEqual(many.terms[t].rec, one.terms[t].rec, accuracy: 1e-4 * one.terms[t].rec)
                        }
                        continue
                    }
                    XCTAssertEqual(many.grads, one.grads, "\(activation) \(kernels): gradients on \(threads) threads")
                    XCTAssertEqual(many.terms, one.terms, "\(activation) \(kernels): terms on \(threads) threads")
                    XCTAssertEqual(many.checksum, one.checksum, "\(activation) \(kernels): θ after Adam on \(threads) threads")
                }
            }
        }
    }

    /// Adam, dW's projection and the unit-norm rows take the threads from 4 M parameters on
    /// (`OptimizerPasses`): the same bits as one thread.
    func testTheOptimizerOnThreadsGivesTheSameBits() throws {
        let big = ModelShape(d: 512, h: 4096)
        let one = try run(.batchtopk, kernels: .sparse, threads: 1, steps: 2, shape: big, m: 8)
        let two = try run(.batchtopk, kernels: .sparse, threads: 2, steps: 2, shape: big, m: 8)
        XCTAssertEqual(two.checksum, one.checksum, "θ after two steps on 2 threads")
        XCTAssertEqual(two.grads, one.grads)
    }

    /// TopK's selection (CKernels/topk.c) against a sort, at widths that take its tiled path
    /// (h ≥ 128 and k ≪ h) and its scan: ties to the lower unit (values on a coarse grid),
    /// fewer positive entries than k, AuxK's `allowed`.
    func testTopKSelectionMatchesASort() {
        var rng = Xoshiro256(seed: 5)
        for (h, k) in [(1000, 8), (8192, 32), (300, 4), (129, 1), (100, 7), (4096, 256)] {
            for trial in 0..<6 {
                let row: [Float] = (0..<h).map { _ in
                    let v = Float(rng.normal())
                    return trial % 2 == 0 ? (v * 4).rounded() / 4 : (trial == 5 ? v - 2.5 : v)   // ties; few positives
                }
                let allowed: [Bool]? = trial == 3 ? (0..<h).map { _ in rng.normal() > 0 } : nil
                var heapUnits = [Int32](repeating: 0, count: k), heapValues = [Float](repeating: 0, count: k)
                var units = [Int32](repeating: 0, count: k), values = [Float](repeating: 0, count: k)
                let n = allowed.withOptionalPointer { mask in
                    TopK.select(row, h: h, k: k, allowed: mask, heapUnits: &heapUnits, heapValues: &heapValues, units: &units, values: &values)
                }
                let expected = (0..<h).filter { row[$0] > 0 && (allowed?[$0] ?? true) }
                    .sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k).sorted()
                XCTAssertEqual(units.prefix(n).map(Int.init), Array(expected), "h \(h), k \(k), trial \(trial)")
                XCTAssertEqual(Array(values.prefix(n)), expected.map { row[$0] }, "h \(h), k \(k), trial \(trial)")
            }
        }
    }

    /// The sparse backward by unit against the dense products: the same gradient up to
    /// float32 rounding, with AuxK's entries among the rows.
    func testTheSparseBackwardMatchesTheDenseProducts() throws {
        for activation in [ArchitectureSettings.Activation.topk, .batchtopk, .jumprelu] {
            let sparse = try run(activation, kernels: .sparse, threads: 2, steps: 2)
            let dense = try run(activation, kernels: .dense, threads: 2, steps: 2)
            for t in 0..<2 {
                let a = sparse.grads[t].map { Float(bitPattern: $0) }, b = dense.grads[t].map { Float(bitPattern: $0) }
                let scale = b.map(abs).max() ?? 1
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5 * max(1, scale), "\(activation) step \(t): sparse and dense gradients differ by \(worst)")
            }
        }
    }
}

private extension Optional where Wrapped == [Bool] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Bool>?) -> R) -> R {
        guard let self else { return body(nil) }
        return self.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
