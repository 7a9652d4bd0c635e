/// The trained model applied to rows of this rank's shard (already normalized with the
/// run's statistics): codes z = relu(x_n V + b) and reconstructions in the data's own units,
/// x̂ = (z W + a)·σ + μ, or (z W + a)·‖x‖/√d for unit-norm.
///
///     x_n (m, d)  rows of the shard       z (m, h)  codes       x̂ (m, d)  reconstruction
final class ShardEncoder {
    let model: TrainedAutoencoder
    let shard: DatasetShard
    private var columnSums: [Float]  // (h), unused here: encoderForward's running sums

    init(model: TrainedAutoencoder, shard: DatasetShard) {
        self.model = model; self.shard = shard
        columnSums = [Float](repeating: 0, count: model.shape.h)
    }

    /// z (rows.count, h) of the global rows `rows` (held by this rank) into `z`.
    func codes(_ rows: Range<Int>, into z: UnsafeMutablePointer<Float>) {
        let d = model.shape.d, h = model.shape.h, w = model.weights
        shard.withRows(rows) { x in
            w.V.withUnsafeBufferPointer { V in
                w.b.withUnsafeBufferPointer { b in
                    columnSums.withUnsafeMutableBufferPointer { sums in
                        // V holds d·h ≥ 1 elements, b and sums h ≥ 1: base addresses exist.
                        guard let V = V.baseAddress, let b = b.baseAddress, let sums = sums.baseAddress else { return }
                        _ = Objective.encoderForward(z: z, columnSums: sums, x: x, V: V, b: b, mr: rows.count, d: d, h: h)
                    }
                }
            }
        }
    }

    /// x̂ (rows.count, d) in the data's own units into `out`.
    func reconstruction(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = model.shape.d, h = model.shape.h, m = rows.count
        guard m > 0 else { return }
        var z = [Float](repeating: 0, count: m * h)
        z.withUnsafeMutableBufferPointer { z in
            guard let z = z.baseAddress else { return }  // m·h ≥ 1 elements
            codes(rows, into: z)
            model.weights.W.withUnsafeBufferPointer { W in
                guard let W = W.baseAddress else { return }
                Float.gemm(transA: false, transB: false, m: m, n: d, k: h, alpha: 1, a: z, lda: h, b: W, ldb: d, beta: 0, c: out, ldc: d)
            }
        }
        for i in 0..<m { shard.denormalize(out + i * d, row: rows.lowerBound + i, offset: model.weights.a) }
    }
}
