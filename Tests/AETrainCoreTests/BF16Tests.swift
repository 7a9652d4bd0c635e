import AETrainCore
import CKernels
import XCTest

/// `--precision bf16`: the kernel (CKernels/bf16_gemm.c) against its scalar reference, bit
/// for bit, over shapes, transposes, α, β, strides and column and row splits; the step's
/// bits on 1, 2 and 4 ranks (deterministic) and on 1, 2 and 3 threads (fast); its gradient
/// against fp32's. On a CPU without AVX512_BF16 the products cannot run: there each test checks
/// instead that bf16 is refused with the line that names the instruction set.
final class BF16Tests: XCTestCase {
    /// True where the products run; elsewhere checks the refusal (and says so) and returns false.
    func bf16Runs(_ what: String) throws -> Bool {
        if Precision.bf16Available {
            XCTAssertNoThrow(try Precision.bf16.checkSupported())
            return true
        }
        XCTAssertThrowsError(try Precision.bf16.checkSupported()) { XCTAssertTrue("\($0)".contains("AVX512_BF16"), "\($0)") }
        print("BF16Tests: this CPU has no AVX512_BF16: \(what) checked as refused")
        return false
    }

    func testTheRefusalNamesTheMissingInstructionSet() {
        XCTAssertThrowsError(try Precision.bf16.checkSupported(available: false)) { error in
            let line = (error as? UserError)?.message ?? "\(error)"
            XCTAssertTrue(line.contains("AVX512_BF16") && !line.contains("\n"), line)
        }
        XCTAssertNoThrow(try Precision.fp32.checkSupported(available: false))
    }

    func testRoundingToNearestEven() {
        func bits(_ x: Float) -> UInt16 { aet_bf16_round(x) }
        XCTAssertEqual(bits(1), 0x3F80)
        XCTAssertEqual(bits(Float(bitPattern: 0x3F80_8000)), 0x3F80, "a tie goes to the even neighbour (down)")
        XCTAssertEqual(bits(Float(bitPattern: 0x3F81_8000)), 0x3F82, "a tie goes to the even neighbour (up)")
        XCTAssertEqual(bits(Float(bitPattern: 0x3F80_8001)), 0x3F81, "above the tie rounds up")
        XCTAssertEqual(bits(-2), 0xC000)
        XCTAssertEqual(bits(.infinity), 0x7F80)
        XCTAssertEqual(bits(.greatestFiniteMagnitude), 0x7F80, "overflows to infinity")
        XCTAssertTrue(Float(bitPattern: UInt32(bits(.nan)) << 16).isNaN)
        XCTAssertTrue(Float(bitPattern: UInt32(bits(Float(bitPattern: 0x7F80_0001))) << 16).isNaN, "a NaN whose payload is in the low half stays NaN")
    }

    /// Random (transA, transB, m, n, k, α, β, strides) against the reference, whole and split by
    /// columns (packed by ranges, as the step's threads pack) and by rows.
    func testProductsMatchTheReferenceBitForBit() throws {
        guard try bf16Runs("the products") else { return }
        var rng = Xoshiro256(seed: 5)
        let panel = Int(aet_bf16_panel_width())
        var shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 1, 2), (3, 5, 7), (7, 2 * panel + 3, 33), (64, 3 * panel, 512), (13, panel - 1, 1030)]
        for _ in 0..<10 { shapes.append((1 + Int(rng.next() % 40), 1 + Int(rng.next() % 150), 1 + Int(rng.next() % 700))) }
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (-2, 0.25)][Int(rng.next() % 3)]
                let lda = (transA ? m : k) + Int(rng.next() % 3), ldb = (transB ? k : n) + Int(rng.next() % 3), ldc = n + 2
                let a = (0..<((transA ? k : m) * lda)).map { _ in Float(rng.normal()) }
                let b = (0..<((transB ? n : k) * ldb)).map { _ in Float(rng.normal()) }
                let c0 = (0..<(m * ldc)).map { _ in beta == 0 ? Float.nan : Float(rng.normal()) }
                var expected = c0, whole = c0, split = c0, rows = c0
                var scratch = [UInt16](repeating: 0, count: Int(aet_bf16_scratch_count(m, n, k)))
                var packed = [UInt16](repeating: 0, count: Int(aet_bf16_packed_b_count(k, n)))
                let tA: Int32 = transA ? 1 : 0, tB: Int32 = transB ? 1 : 0
                aet_bf16_gemm_reference(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, &expected, ldc)
                aet_bf16_gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, &whole, ldc, &scratch)
                // Columns: two parts on a panel boundary, each packing its own panels.
                let cut = min(n, panel * ((n / panel + 1) / 2))
                for part in [0..<cut, cut..<n] where !part.isEmpty {
                    aet_bf16_pack_b_range(tB, k, n, b, ldb, &packed, part.lowerBound, part.upperBound)
                    aet_bf16_gemm_packed(tA, m, n, k, alpha, a, lda, packed, part.lowerBound, part.upperBound, beta, &split, ldc, &scratch)
                }
                // Rows: the first row alone, then the rest.
                aet_bf16_pack_b(tB, k, n, b, ldb, &packed)
                for part in [0..<min(1, m), min(1, m)..<m] where !part.isEmpty {
                    a.withUnsafeBufferPointer { a in
                        rows.withUnsafeMutableBufferPointer { c in
                            let aPart = a.baseAddress! + (transA ? part.lowerBound : part.lowerBound * lda)
                            aet_bf16_gemm_packed(tA, part.count, n, k, alpha, aPart, lda, packed, 0, n, beta,
                                                 c.baseAddress! + part.lowerBound * ldc, ldc, &scratch)
                        }
                    }
                }
                let label = "(\(transA ? "T" : "N")\(transB ? "T" : "N") m \(m) n \(n) k \(k) α \(alpha) β \(beta))"
                for i in 0..<m {
                    for j in 0..<n {
                        let e = expected[i * ldc + j].bitPattern
                        guard whole[i * ldc + j].bitPattern == e, split[i * ldc + j].bitPattern == e, rows[i * ldc + j].bitPattern == e else {
                            XCTFail("\(label) C[\(i)][\(j)]: reference \(expected[i * ldc + j]), whole \(whole[i * ldc + j]), "
                                    + "by columns \(split[i * ldc + j]), by rows \(rows[i * ldc + j])")
                            return
                        }
                    }
                    for j in n..<ldc { XCTAssertEqual(whole[i * ldc + j].bitPattern, c0[i * ldc + j].bitPattern, "\(label): wrote past n") }
                }
                // bf16-sized error against the float64 product.
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = 0.0, size = 0.0
                        for p in 0..<k {
                            let x = Double(transA ? a[p * lda + i] : a[i * lda + p]), y = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                            exact += x * y; size += abs(x * y)
                        }
                        let want = Double(alpha) * exact + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
                        XCTAssertLessThan(abs(Double(whole[i * ldc + j]) - want), 1.6e-2 * (abs(Double(alpha)) * size + 1e-6) + 1e-5, "\(label) C[\(i)][\(j)]")
                    }
                }
            }
        }
    }

    let shape = ModelShape(d: 40, h: 70)
    let m = 24

    /// Steps of relu (λ = 0.1, ε = 0.01, η = 0.001) or an architecture on `ranks` thread ranks,
    /// deterministic, or in one process on `threads` threads; the summed gradient's bits per step
    /// and θ's checksum at the end (checked equal on every rank).
    func run(_ activation: ArchitectureSettings.Activation, precision: Precision, ranks: Int = 1, threads: Int = 1,
             deterministic: Bool) throws -> (grads: [[Float]], checksum: UInt64) {
        var a = ArchitectureSettings(activation: activation)
        a.k = 6; a.auxK = 8; a.deadSteps = 1
        let architecture = activation == .relu ? nil : a
        let layout = ParameterLayout(shape, threshold: activation == .jumprelu)
        var rng = Xoshiro256(seed: 3)
        var theta = (0..<layout.count).map { _ in Float(0.2 * rng.normal()) }
        if activation == .jumprelu { for i in layout.tensors[4].range { theta[i] = 0.05 } }
        let settings = activation == .relu ? ObjectiveSettings(lambda: 0.1, epsilon: 0.01, eta: 0.001) : ObjectiveSettings(lambda: 0.1, epsilon: 0, eta: 0)
        let (d, m, steps) = (shape.d, m, 3)
        var adam = AdamSettings()
        adam.learningRate = 0.01
        func batch(_ t: Int) -> [Float] {
            var data = Xoshiro256(seed: UInt64(50 + t))
            return (0..<(m * d)).map { _ in Float(data.normal()) }
        }
        func store() -> ParameterStore<Float> {
            let store = ParameterStore<Float>(layout: layout, reducedSlots: ArchitectureTerm.reducedSlots(for: architecture))
            for (i, v) in theta.enumerated() { store.params[i] = v }
            return store
        }
        var options = StepOptions(kernels: .dense, deterministic: deterministic, threads: threads)
        options.precision = precision
        guard deterministic else {
            // The fast step: one process, its threads.
            let store = store()
            let step = DistributedStep(store: store, maxRows: m, settings: settings, comm: SingleProcess(), options: options, architecture: architecture)
            var grads: [[Float]] = []
            for t in 0..<steps {
                _ = try batch(t).withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
                grads.append((0..<layout.count).map { store.grads[$0] })
                try step.update(adam)
            }
            return (grads, store.checksum())
        }
        let results = RankResults<Float>()
        try ThreadRanks(size: ranks).run { comm in
            let cut = BatchCut(batchSize: m, ranks: ranks, rank: comm.rank, fixedOrder: true)
            let store = store()
            let step = DistributedStep(store: store, cut: cut, settings: settings, comm: comm, options: options, architecture: architecture)
            var local = [Float](repeating: 0, count: cut.localChunks.count * cut.slotStride(d: d))
            var grads: [[Float]] = []
            for t in 0..<steps {
                let x = batch(t)
                for k in cut.piece { for c in 0..<d { local[cut.offset(ofPosition: k, d: d) + c] = x[k * d + c] } }
                _ = try local.withUnsafeBufferPointer { try step.lossAndGradient(batch: $0.baseAddress!) }
                grads.append((0..<layout.count).map { store.grads[$0] })
                try step.update(adam)
            }
            results.lock.lock()
            results.byRank[comm.rank] = (grads, [], store.checksum(), 0)
            results.lock.unlock()
        }
        let first = try XCTUnwrap(results.byRank[0])
        for r in 1..<ranks { XCTAssertEqual(try XCTUnwrap(results.byRank[r]).2, first.2, "rank \(r) holds other parameters") }
        return (first.0, first.2)
    }

    /// The first step and element where two runs' gradients differ in a bit, if any.
    func assertSameBits(_ x: [[Float]], _ y: [[Float]], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        for t in 0..<min(x.count, y.count) {
            if let i = x[t].indices.first(where: { $0 < y[t].count && x[t][$0].bitPattern != y[t][$0].bitPattern }) {
                XCTFail("\(label): step \(t), gradient element \(i): \(x[t][i]) against \(y[t][i])", file: file, line: line)
                return
            }
        }
        XCTAssertEqual(x.count, y.count, label, file: file, line: line)
    }

    /// ‖bf16 − fp32‖ / ‖fp32‖ of the first step's gradient (the same θ; later steps start
    /// from parameters that have drifted apart).
    func relativeDifference(_ x: [[Float]], _ y: [[Float]]) -> Double {
        let p = x[0].map(Double.init), q = y[0].map(Double.init)
        let difference = zip(p, q).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), size = q.map { $0 * $0 }.reduce(0, +)
        return (difference / max(size, 1e-300)).squareRoot()
    }

    func testDeterministicStepIsTheSameBitsOnOneTwoAndFourRanks() throws {
        guard try bf16Runs("the deterministic bf16 step") else { return }
        for activation in [ArchitectureSettings.Activation.relu, .topk, .batchtopk, .jumprelu] {
            let one = try run(activation, precision: .bf16, ranks: 1, deterministic: true)
            for ranks in [2, 4] {
                let many = try run(activation, precision: .bf16, ranks: ranks, deterministic: true)
                XCTAssertEqual(many.checksum, one.checksum, "\(activation): θ after 3 steps on \(ranks) ranks")
                assertSameBits(many.grads, one.grads, "\(activation) on \(ranks) ranks")
            }
            // One rank's chunks on two workers at once: the first decoder product of the step
            // packs W under the lock, whichever worker reaches it.
            let workers = try run(activation, precision: .bf16, ranks: 1, threads: 2, deterministic: true)
            XCTAssertEqual(workers.checksum, one.checksum, "\(activation): θ after 3 steps on 2 chunk workers")
            assertSameBits(workers.grads, one.grads, "\(activation) on 2 chunk workers")
            let fp32 = try run(activation, precision: .fp32, ranks: 1, deterministic: true)
            let difference = relativeDifference(one.grads, fp32.grads)
            XCTAssertGreaterThan(difference, 0, "\(activation): the bf16 step computed in fp32")
            // bf16 keeps 8 bits of mantissa (relative rounding 2⁻⁹); TopK's and JumpReLU's kept
            // sets and JumpReLU's threshold window also move where an entry sits within a rounding
            // of the edge.
            let limit = activation == .relu || activation == .batchtopk ? 0.02 : 0.1
            XCTAssertLessThan(difference, limit, "\(activation): bf16's gradient against fp32's")
            print("BF16Tests: \(activation) first-step gradient, ‖bf16 − fp32‖/‖fp32‖ = \(difference)")
        }
    }

    func testFastStepIsTheSameBitsOnOneTwoAndThreeThreads() throws {
        guard try bf16Runs("the fast bf16 step") else { return }
        for activation in [ArchitectureSettings.Activation.relu, .topk, .jumprelu] {
            let one = try run(activation, precision: .bf16, threads: 1, deterministic: false)
            for threads in [2, 3] {
                let many = try run(activation, precision: .bf16, threads: threads, deterministic: false)
                assertSameBits(many.grads, one.grads, "\(activation) on \(threads) threads")
                XCTAssertEqual(many.checksum, one.checksum, "\(activation) on \(threads) threads")
            }
        }
    }
}
