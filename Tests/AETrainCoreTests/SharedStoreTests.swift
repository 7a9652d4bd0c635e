import AETrainCore
import XCTest

/// The shared parameter store (`ParameterStore.shared`) with ranks as threads: each rank
/// writes its own gradient, then sums, regularizes and updates its part in one pass
/// (`SharedMemoryReduction`); every
/// rank then holds what one store updated with the summed, regularized gradient holds, to the
/// bit.
final class SharedStoreTests: XCTestCase {
    /// An odd layout (sizes not multiples of 16) so that the ranks' parts end mid-tensor.
    let layout = ParameterLayout(shape: ModelShape(d: 7, h: 5), tensors: [("V", [37, 11]), ("W", [5, 7]), ("b", [3])])

    /// Rank r's gradient entry i: distinct per rank, of mixed sign and size.
    func gradient(rank r: Int, _ i: Int, step t: Int) -> Float {
        Float(sin(Double(i * 7 + r * 13 + t * 3))) * Float(1 + r) * 0.01
    }

    func testRanksSumAndUpdateTheirPartsLikeOneStore() throws {
        var settings = AdamSettings()
        settings.learningRate = 0.01
        let W = layout.tensors[1].range, eta: Float = 0.15, twoEta = 2 * eta
        for ranks in [2, 3, 4] {
            let n = layout.count
            // The reference: one private store, the gradients summed in rank order.
            let reference = ParameterStore<Float>(layout: layout)
            for i in 0..<n { reference.params[i] = Float(i % 9) * 0.1 - 0.4 }
            for t in 1...3 {
                for i in 0..<n {
                    var total = gradient(rank: 0, i, step: t)
                    for r in 1..<ranks { total += gradient(rank: r, i, step: t) }
                    reference.grads[i] = total
                }
                // The regularizer's gradient on W, as the allreduce step adds it.
                _ = Float.regularizer(reference.grads + W.lowerBound, reference.params + W.lowerBound, twoEta: twoEta, count: W.count)
                Adam.step(reference, settings: settings)
            }
            final class Results: @unchecked Sendable {
                let lock = NSLock()
                var parameters: [[Float]] = []
                var parts: [Range<Int>] = []
                var sums: [Float] = []
            }
            let results = Results()
            try ThreadRanks(size: ranks).run { comm in
                let store = try ParameterStore<Float>.shared(layout: self.layout, reducedSlots: 2, comm: comm)
                guard let sharing = store.sharing else { return XCTFail("no shared memory with \(ranks) thread ranks") }
                let reduction = SharedMemoryReduction(store: store, comm: comm, eta: eta)
                // Set-up: every rank writes the same θ.
                for i in 0..<n { store.params[i] = Float(i % 9) * 0.1 - 0.4 }
                for t in 1...3 {
                    if store.needsSynchronize { try sharing.segment.synchronize() }
                    for i in 0..<n { store.grads[i] = self.gradient(rank: comm.rank, i, step: t) }
                    store.setReduced(slot: 0, Float(comm.rank + 1))
                    store.setReduced(slot: 1, 0.5)
                    try sharing.segment.synchronize()
                    try reduction.sumOverRanks()
                    try reduction.update(settings)
                }
                results.lock.lock()
                results.parameters.append(Array(store.parameterBuffer))
                results.parts.append(sharing.owned)
                results.sums.append(store.reduced(slot: 0) + store.reduced(slot: 1))
                results.lock.unlock()
            }
            for p in results.parameters {
                XCTAssertEqual(p, Array(reference.parameterBuffer), "\(ranks) ranks: θ differs from one store's")
            }
            // The parts tile the parameters, on 16-element boundaries.
            let parts = results.parts.sorted { $0.lowerBound < $1.lowerBound }
            XCTAssertEqual(parts.first?.lowerBound, 0)
            XCTAssertEqual(parts.last?.upperBound, n)
            for (a, b) in zip(parts, parts.dropFirst()) {
                XCTAssertEqual(a.upperBound, b.lowerBound)
                XCTAssertEqual(a.upperBound % 16, 0)
            }
            let expected = Float(ranks * (ranks + 1) / 2) + 0.5 * Float(ranks)
            XCTAssertEqual(results.sums, Array(repeating: expected, count: ranks))
        }
    }
}
