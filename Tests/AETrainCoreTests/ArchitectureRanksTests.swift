import AETrainCore
import XCTest

/// The new architectures' step on 1, 2 and 4 ranks (threads) with `--deterministic`: the same
/// bits (gradients, terms, parameters after Adam), and batchtopk's distributed selection
/// equal to the one a single process makes from scratch, ties included.
final class ArchitectureRanksTests: XCTestCase {
    let shape = ModelShape(d: 8, h: 24)
    let m = 20

    func architecture(_ a: ArchitectureSettings.Activation) -> ArchitectureSettings {
        var s = ArchitectureSettings(activation: a)
        s.k = 3; s.auxK = 4; s.deadSteps = 1
        return s
    }

    /// Runs `steps` steps on `ranks` thread ranks; returns, per step, the bit patterns of the
    /// summed gradient and the terms, and θ's checksum at the end (equal on every rank).
    func run<T: BLASScalar>(_ type: T.Type, _ a: ArchitectureSettings, ranks: Int, steps: Int, data: @escaping (Int) -> [T], theta: [T],
                            kernels: KernelChoice) throws -> (grads: [[T]], terms: [ObjectiveTerms], checksum: UInt64, threshold: Double) {
        let results = RankResults<T>()
        let (d, m) = (shape.d, m)
        let layout = ParameterLayout(shape, threshold: a.activation == .jumprelu)
        try ThreadRanks(size: ranks).run { comm in
            let cut = BatchCut(batchSize: m, ranks: ranks, rank: comm.rank, fixedOrder: true)
            let store = ParameterStore<T>(layout: layout, reducedSlots: ArchitectureTerm.reducedSlots(for: a))
            for (i, v) in theta.enumerated() { store.params[i] = v }
            let step = DistributedStep(store: store, cut: cut, settings: ObjectiveSettings(lambda: 0.1, epsilon: 0, eta: 0), comm: comm,
                                       options: StepOptions(kernels: kernels, deterministic: true), architecture: a)
            var batch = [T](repeating: 0, count: cut.localChunks.count * cut.slotStride(d: d))
            var grads: [[T]] = [], terms: [ObjectiveTerms] = []
            var adam = AdamSettings()
            adam.learningRate = 0.01
            for t in 0..<steps {
                let x = data(t)
                for k in cut.piece { for c in 0..<d { batch[cut.offset(ofPosition: k, d: d) + c] = x[k * d + c] } }
                terms.append(try batch.withUnsafeBufferPointer { try step.lossAndGradient(batch: $0.baseAddress!) })
                grads.append((0..<layout.count).map { store.grads[$0] })
                try step.update(adam)
            }
            results.lock.lock()
            results.byRank[comm.rank] = (grads, terms, store.checksum(), step.batchTopK?.threshold ?? 0)
            results.lock.unlock()
        }
        let first = try XCTUnwrap(results.byRank[0])
        for r in 1..<ranks {
            let other = try XCTUnwrap(results.byRank[r])
            XCTAssertEqual(other.2, first.2, "rank \(r) holds other parameters")
        }
        return (first.0, first.1, first.2, first.3)
    }

    func randomTheta(_ a: ArchitectureSettings, seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        let layout = ParameterLayout(shape, threshold: a.activation == .jumprelu)
        var theta = (0..<layout.count).map { _ in Float(0.3 * rng.normal()) }
        if a.activation == .jumprelu { for i in layout.tensors[4].range { theta[i] = 0.05 } }
        return theta
    }

    func testOneTwoAndFourRanksGiveTheSameBits() throws {
        for activation in [ArchitectureSettings.Activation.topk, .batchtopk, .jumprelu] {
            for kernels in [KernelChoice.dense, .sparse] {
                let a = architecture(activation)
                let theta = randomTheta(a, seed: 7)
                let data = { (t: Int) -> [Float] in
                    var rng = Xoshiro256(seed: UInt64(100 + t))
                    return (0..<(self.m * self.shape.d)).map { _ in Float(rng.normal()) }
                }
                let one = try run(Float.self, a, ranks: 1, steps: 4, data: data, theta: theta, kernels: kernels)
                XCTAssertTrue(one.terms.contains { $0.auxK > 0 } || activation == .jumprelu, "\(activation): AuxK ran")
                for ranks in [2, 4] {
                    let many = try run(Float.self, a, ranks: ranks, steps: 4, data: data, theta: theta, kernels: kernels)
                    XCTAssertEqual(many.checksum, one.checksum, "\(activation) \(kernels): θ after 4 steps on \(ranks) ranks")
                    for t in 0..<4 {
                        XCTAssertEqual(many.grads[t].map { Double($0).bitPattern }, one.grads[t].map { Double($0).bitPattern }, "\(activation) \(kernels) step \(t), \(ranks) ranks")
                        XCTAssertEqual(many.terms[t], one.terms[t], "\(activation) \(kernels) step \(t), \(ranks) ranks")
                    }
                }
            }
        }
    }

    /// Integer data and weights: π is exact and full of ties, so the kept set is decided by the
    /// tie rule (value, then position in the batch, then unit). rec and L0 from the step equal
    /// those of the selection made here over the whole batch, on every rank count.
    func testBatchTopKSelectsAsOneProcessWithTies() throws {
        let a = architecture(.batchtopk)
        var rng = Xoshiro256(seed: 3)
        let layout = ParameterLayout(shape)
        var theta = [Double](repeating: 0, count: layout.count)
        for i in layout.V { theta[i] = Double(Int(rng.next() % 3) - 1) }
        for i in layout.W { theta[i] = Double(Int(rng.next() % 5) - 2) }
        for i in layout.b { theta[i] = Double(Int(rng.next() % 3) - 1) }
        let x = (0..<(m * shape.d)).map { _ in Double(Int(rng.next() % 5) - 2) }
        // The selection from scratch.
        let (d, h) = (shape.d, shape.h)
        var pi = [Double](repeating: 0, count: m * h)
        for i in 0..<m { for j in 0..<h {
            pi[i * h + j] = theta[layout.b.lowerBound + j] + (0..<d).reduce(0.0) { $0 + x[i * d + $1] * theta[layout.V.lowerBound + $1 * h + j] }
        } }
        let order = (0..<(m * h)).filter { pi[$0] > 0 }.sorted { pi[$0] > pi[$1] || (pi[$0] == pi[$1] && $0 < $1) }
        let kept = Set(order.prefix(a.k * m))
        XCTAssertGreaterThan(order.count, a.k * m, "more positive entries than kept")
        let boundary = pi[order[a.k * m - 1]]
        XCTAssertTrue(order.dropFirst(a.k * m).contains { pi[$0] == boundary }, "the boundary value is tied across the cut")
        var sse = 0.0
        for i in 0..<m { for k in 0..<d {
            var xhat = 0.0
            for j in 0..<h where kept.contains(i * h + j) { xhat += pi[i * h + j] * theta[layout.W.lowerBound + j * d + k] }
            sse += (xhat - x[i * d + k]) * (xhat - x[i * d + k])
        } }
        for ranks in [1, 2, 4] {
            let r = try run(Double.self, a, ranks: ranks, steps: 1, data: { _ in x }, theta: theta, kernels: .dense)
            XCTAssertEqual(r.terms[0].l0, Double(a.k), "\(ranks) ranks: k·m kept")
            XCTAssertEqual(r.terms[0].rec, sse / Double(m), "\(ranks) ranks: the kept set is the one-process one")
        }
    }
}

final class RankResults<T>: @unchecked Sendable {
    let lock = NSLock()
    var byRank: [Int: ([[T]], [ObjectiveTerms], UInt64, Double)] = [:]
}
