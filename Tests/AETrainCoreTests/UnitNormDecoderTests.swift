import AETrainCore
import Foundation
import XCTest

/// `--decoder-norm unit`: the projected gradient is the gradient of the loss restricted to the
/// unit sphere of each row of W (finite differences along the sphere), rows stay at unit norm
/// through training, and the shared-memory step, whose ranks each own whole rows, updates θ to
/// the bit as one store does.
final class UnitNormDecoderTests: XCTestCase {
    let shape = ModelShape(d: 6, h: 5)
    let m = 9

    /// Data and parameters with W's rows at unit norm.
    func makeProblem(seed: UInt64) -> (x: [Double], theta: [Double]) {
        var rng = Xoshiro256(seed: seed)
        let layout = ParameterLayout(shape)
        let x = (0..<(m * shape.d)).map { _ in rng.normal() }
        var theta = (0..<layout.count).map { _ in 0.4 * rng.normal() }
        for i in layout.b { theta[i] += 0.3 }
        theta.withUnsafeMutableBufferPointer { UnitNormDecoder.normalize(W: $0.baseAddress! + layout.W.lowerBound, rows: 0..<shape.h, d: shape.d) }
        return (x, theta)
    }

    func evaluate(_ theta: [Double], x: [Double], settings: ObjectiveSettings, unit: Bool) throws -> (ObjectiveTerms, [Double]) {
        let store = ParameterStore<Double>(layout: ParameterLayout(shape))
        for (i, v) in theta.enumerated() { store.params[i] = v }
        let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(),
                                   options: StepOptions(kernels: .dense), unitNormDecoder: unit)
        let terms = try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
        return (terms, (0..<theta.count).map { store.grads[$0] })
    }

    /// For every row j and random directions v: d/dt loss(w_j → (w_j + t v)/‖w_j + t v‖) at t = 0,
    /// by central differences, equals the projected gradient · v; the projected gradient is
    /// orthogonal to w_j; the other tensors' gradients are untouched.
    func testProjectedGradientIsTheGradientOnTheSphere() throws {
        let settings = ObjectiveSettings(lambda: 0.7, epsilon: 0.05, eta: 0.3)
        let (x, theta) = makeProblem(seed: 11)
        let layout = ParameterLayout(shape), d = shape.d
        let (_, projected) = try evaluate(theta, x: x, settings: settings, unit: true)
        let (_, plain) = try evaluate(theta, x: x, settings: settings, unit: false)
        for i in 0..<layout.count where !layout.W.contains(i) { XCTAssertEqual(projected[i], plain[i], "parameter \(i)") }
        var rng = Xoshiro256(seed: 3)
        for j in 0..<shape.h {
            let row = layout.W.lowerBound + j * d
            let w = Array(theta[row..<(row + d)]), g = Array(projected[row..<(row + d)])
            XCTAssertEqual(zip(g, w).map(*).reduce(0, +), 0, accuracy: 1e-12, "row \(j): tangent")
            for _ in 0..<3 {
                let v = (0..<d).map { _ in rng.normal() }
                func loss(_ t: Double) throws -> Double {
                    var moved = theta
                    let u = (0..<d).map { w[$0] + t * v[$0] }
                    let norm = u.map { $0 * $0 }.reduce(0, +).squareRoot()
                    for k in 0..<d { moved[row + k] = u[k] / norm }
                    return try evaluate(moved, x: x, settings: settings, unit: false).0.loss(settings)
                }
                let h = 1e-6
                let numeric = (try loss(h) - loss(-h)) / (2 * h)
                let analytic = zip(g, v).map(*).reduce(0, +)
                XCTAssertEqual(numeric, analytic, accuracy: 1e-6 * max(1, abs(analytic)), "row \(j)")
            }
        }
    }

    /// Training from a fresh start with unit rows: W starts with unit rows (V's columns,
    /// normalized) and keeps them; ‖W‖² = h.
    func testRowsStayAtUnitNorm() throws {
        let spec = SyntheticSpec(examples: 200, shape: ImageShape(height: 5, width: 6))
        let shard = try DatasetShard.load(.synthetic(spec, seed: 0), imageShape: nil, comm: SingleProcess())
        var settings = TrainSettings()
        settings.hidden = 12
        settings.batchSize = 20
        settings.objective = ObjectiveSettings(lambda: 0.5)
        settings.adam.learningRate = 1e-2
        var architecture = ArchitectureSettings()
        architecture.decoderNorm = .unit
        settings.architecture = architecture
        let model = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess())
        let (d, h) = (model.shape.d, model.shape.h)
        func worst() -> Double {
            (0..<h).map { j in abs(UnitNormDecoder.dot(model.store.W + j * d, model.store.W + j * d, d).squareRoot() - 1) }.max() ?? 1
        }
        XCTAssertLessThan(worst(), 1e-6, "initial rows")
        for j in 0..<h {
            let norm = (0..<d).map { Double(model.store.V[$0 * h + j]) }.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertEqual(Double(model.store.W[j * d]), Double(model.store.V[j]) / norm, accuracy: 1e-6, "row \(j) starts as V's column")
        }
        let before = Array(model.store.tensor(model.store.layout.W))
        for i in 0..<50 {
            let step = try model.iterate(i, stop: false)
            XCTAssertEqual(step.record.reg ?? 0, Double(h), accuracy: 1e-4)
        }
        XCTAssertLessThan(worst(), 1e-6, "after 50 steps")
        XCTAssertNotEqual(Array(model.store.tensor(model.store.layout.W)), before, "W moved")
    }

    /// Two to four thread ranks sharing a store whose parts would cut W's rows: the cuts move to
    /// row boundaries, and the parameters after three steps are, to the bit, one store's with the
    /// summed gradient, 2ηW, the projection, Adam and the renormalization.
    func testSharedMemoryRanksOwnWholeRowsAndMatchOneStore() throws {
        let layout = ParameterLayout(shape: ModelShape(d: 7, h: 6), tensors: [("V", [7, 6]), ("W", [6, 7]), ("b", [6]), ("a", [7])])
        let W = layout.tensors[1].range, d = 7, h = 6
        var settings = AdamSettings()
        settings.learningRate = 0.01
        let eta: Float = 0.15
        func gradient(rank r: Int, _ i: Int, step t: Int) -> Float { Float(sin(Double(i * 7 + r * 13 + t * 3))) * Float(1 + r) * 0.01 }
        func initial(_ p: UnsafeMutablePointer<Float>) {
            for i in 0..<layout.count { p[i] = Float(i % 9) * 0.1 - 0.4 + Float(i % 4) * 0.05 }
            UnitNormDecoder.normalize(W: p + W.lowerBound, rows: 0..<h, d: d)
        }
        for ranks in [2, 3, 4] {
            let reference = ParameterStore<Float>(layout: layout)
            initial(reference.params)
            for t in 1...3 {
                for i in 0..<layout.count {
                    var total = gradient(rank: 0, i, step: t)
                    for r in 1..<ranks { total += gradient(rank: r, i, step: t) }
                    reference.grads[i] = total
                }
                _ = Float.regularizer(reference.grads + W.lowerBound, reference.params + W.lowerBound, twoEta: 2 * eta, count: W.count)
                UnitNormDecoder.project(dW: reference.dW, W: reference.W, rows: 0..<h, d: d)
                Adam.step(reference, settings: settings)
                UnitNormDecoder.normalize(W: reference.W, rows: 0..<h, d: d)
            }
            final class Results: @unchecked Sendable {
                let lock = NSLock()
                var parameters: [[Float]] = []
                var parts: [Range<Int>] = []
            }
            let results = Results()
            try ThreadRanks(size: ranks).run { comm in
                let store = try ParameterStore<Float>.shared(layout: layout, reducedSlots: 1, rowsOf: (W, d), comm: comm)
                guard let sharing = store.sharing else { return XCTFail("no shared memory with \(ranks) thread ranks") }
                let reduction = SharedMemoryReduction(store: store, comm: comm, eta: eta, unitNormDecoder: true)
                // One rank sets the shared θ, the others wait: normalizing rows that another rank
                // is still writing would read a half-written row.
                if comm.rank == 0 { initial(store.params) }
                try sharing.segment.synchronize()
                for t in 1...3 {
                    if store.needsSynchronize { try sharing.segment.synchronize() }
                    for i in 0..<layout.count { store.grads[i] = gradient(rank: comm.rank, i, step: t) }
                    try sharing.segment.synchronize()
                    try reduction.sumOverRanks()
                    try reduction.update(settings)
                }
                results.lock.lock()
                results.parameters.append(Array(store.parameterBuffer))
                results.parts.append(sharing.owned)
                results.lock.unlock()
            }
            let expected = Array(reference.parameterBuffer)
            for p in results.parameters { XCTAssertEqual(p, expected, "\(ranks) ranks") }
            for part in results.parts where part.overlaps(W) {
                XCTAssertEqual((max(part.lowerBound, W.lowerBound) - W.lowerBound) % d, 0, "\(ranks) ranks: \(part) starts on a row")
                XCTAssertEqual((min(part.upperBound, W.upperBound) - W.lowerBound) % d, 0, "\(ranks) ranks: \(part) ends on a row")
            }
            XCTAssertEqual(results.parts.map(\.count).reduce(0, +), layout.count, "the parts cover θ")
        }
    }
}
