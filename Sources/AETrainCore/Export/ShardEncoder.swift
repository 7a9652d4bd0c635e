/// The trained model applied to output rows of this rank (`EncodedRows`: examples of its shard,
/// already normalized with the run's statistics): codes z by the run's `InferenceRule` and
/// reconstructions in the data's own units, x̂ = (z W + a)·σ + μ, or (z W + a)·‖x‖/√d for
/// unit-norm.
///
///     x_n (m, d)  the rows' examples      z (m, h)  codes       x̂ (m, d)  reconstruction
final class ShardEncoder {
    let model: TrainedAutoencoder
    let shard: DatasetShard
    let rows: EncodedRows
    private var columnSums: [Float]  // (h), unused here: encoderForward's running sums
    private var gathered: [Float] = []  // (m, d): the examples of rows that are not contiguous

    /// More rows than the kernel's blocks of A hold (`aet_bf16_packed_scratch_count` grows with
    /// m only up to its block).
    static let anyRows = 1 << 12
    /// `encode --precision bf16`: V and W packed once, the products on this rank's BLAS threads.
    private let products: Products<Float>

    init(model: TrainedAutoencoder, shard: DatasetShard, rows: EncodedRows, precision: Precision = .fp32) {
        self.model = model; self.shard = shard; self.rows = rows
        columnSums = [Float](repeating: 0, count: model.shape.h)
        guard precision == .bf16 else { products = .blas; return }
        let (d, h) = (model.shape.d, model.shape.h)
        // Panels of A for any number of rows: the kernel packs A by blocks of a few rows.
        let bf16 = BF16Products(d: d, h: h, rows: Self.anyRows, workers: 1, loop: ParallelLoop(threads: BLASThreads.current), activations: false)
        model.weights.V.withUnsafeBufferPointer { V in
            model.weights.W.withUnsafeBufferPointer { W in
                // (d, h) and (h, d), d·h ≥ 1 elements each.
                guard let V = V.baseAddress, let W = W.baseAddress else { return }
                bf16.packWeights(V: V, W: W)
            }
        }
        products = Products(bf16: bf16, worker: nil)
    }

    /// z (outputRows.count, h) of output rows `outputRows` (this rank's) into `z`.
    func codes(_ outputRows: Range<Int>, into z: UnsafeMutablePointer<Float>) {
        let d = model.shape.d, h = model.shape.h, w = model.weights, m = outputRows.count
        withExamples(outputRows) { x in
            w.V.withUnsafeBufferPointer { V in
                w.b.withUnsafeBufferPointer { b in
                    columnSums.withUnsafeMutableBufferPointer { sums in
                        // V holds d·h ≥ 1 elements, b and sums h ≥ 1: base addresses exist.
                        guard let V = V.baseAddress, let b = b.baseAddress, let sums = sums.baseAddress else { return }
                        model.rule.encode(z: z, x: x, V: V, b: b, columnSums: sums, m: m, d: d, h: h, products: products)
                    }
                }
            }
        }
    }

    /// The examples of `outputRows`, (m, d): the shard's own memory when they are contiguous
    /// (every example), else copied together.
    private func withExamples(_ outputRows: Range<Int>, _ body: (UnsafePointer<Float>) -> Void) {
        guard let examples = rows.examples else { return shard.withRows(outputRows, body) }
        let d = model.shape.d
        if gathered.count < max(1, outputRows.count * d) { gathered = [Float](repeating: 0, count: max(1, outputRows.count * d)) }
        gathered.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }  // ≥ 1 element
            for (i, o) in outputRows.enumerated() { shard.copyRow(examples[o], to: base + i * d) }
            body(base)
        }
    }

    /// x̂ (outputRows.count, d) in the data's own units into `out`.
    func reconstruction(_ outputRows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = model.shape.d, h = model.shape.h, m = outputRows.count
        guard m > 0 else { return }
        var z = [Float](repeating: 0, count: m * h)
        z.withUnsafeMutableBufferPointer { z in
            guard let z = z.baseAddress else { return }  // m·h ≥ 1 elements
            codes(outputRows, into: z)
            model.weights.W.withUnsafeBufferPointer { W in
                guard let W = W.baseAddress else { return }
                products.gemm(.decoder, transA: false, transB: false, m: m, n: d, k: h, alpha: 1, a: z, lda: h, b: W, ldb: d, beta: 0, c: out, ldc: d)
            }
        }
        for (i, o) in outputRows.enumerated() { shard.denormalize(out + i * d, row: rows.example(o), offset: model.weights.a) }
    }
}
