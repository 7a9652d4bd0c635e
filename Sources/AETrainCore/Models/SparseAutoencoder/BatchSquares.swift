/// The sums of squares behind explained variance, over the rows of a global batch:
///
///     S  = Σ_i ‖x_i‖²                    the squared norm the model reconstructs
///     Sc = Σ_i ‖x_i − x̄‖² = S − ‖Σ_i x_i‖² / m      about the batch's own mean x̄
///
/// EV = 1 − SSE / Sc; 1 − SSE / S is the fraction of the squared norm explained, which differs
/// from it where the data are not centred. Each chunk's column sums and S in double, reduced
/// over the chunks and ranks (in the fixed tree with `--deterministic`: the same bits on any
/// number of ranks). In double the subtraction loses about 1e-16 · S / Sc relative, far below
/// float32's resolution even for data whose mean is 10⁴ times their spread.
///
/// Measured at log lines only; its buffers are made once.
public final class BatchSquares {
    private let cut: BatchCut
    private let d: Int
    private let stride: Int
    private let scratch: Arena
    private let sums: UnsafeMutablePointer<Double>     // (L, stride): Σ_i x_i (d), then S
    private let partner: UnsafeMutablePointer<Double>  // (d + 1) a partner's values in the fixed-order sum

    init(cut: BatchCut, d: Int) {
        self.cut = cut
        self.d = d
        stride = (d + 1 + 7) / 8 * 8
        var size = Arena.Size()
        size.add(Double.self, cut.localChunks.count * stride)
        size.add(Double.self, d + 1)
        scratch = Arena(size)
        sums = scratch.take(Double.self, cut.localChunks.count * stride)
        partner = scratch.take(Double.self, d + 1)
    }

    /// (Sc, S) of the global batch whose local chunks lie `cut.slotStride(d:)` apart from
    /// `batch` (`BatchExchange`'s layout). Collective.
    func measure(batch: UnsafePointer<Float>, comm: Communicator) throws -> (centred: Double, squaredNorm: Double) {
        let chunks = cut.localChunks
        for (i, c) in chunks.enumerated() {
            Self.add(rows: batch + i * cut.slotStride(d: d), count: cut.chunk(c).count, d: d, into: sums + i * stride)
        }
        FixedOrder.tree(sums, count: d + 1, stride: stride, chunks: chunks.count)
        if cut.fixedOrder {
            try comm.allreduceSumInFixedOrder(sums, count: d + 1, scratch: partner)
        } else {
            try comm.allreduceSum(sums, count: d + 1)
        }
        let s = sums[d]
        return (Self.centred(squaredNorm: s, columnSums: sums, count: Double(cut.batchSize), d: d), s)
    }

    /// Writes the column sums (d) and Σ‖x_i‖² of `count` rows of `x` (count, d) to `out` (d + 1).
    static func add(rows x: UnsafePointer<Float>, count: Int, d: Int, into out: UnsafeMutablePointer<Double>) {
        out.update(repeating: 0, count: d + 1)
        var squares = 0.0
        for i in 0..<count {
            let row = x + i * d
            for k in 0..<d {
                let v = Double(row[k])
                out[k] += v
                squares += v * v
            }
        }
        out[d] = squares
    }

    /// Σ‖x_i − x̄‖² = S − ‖Σ x_i‖² / n, never below 0.
    public static func centred(squaredNorm s: Double, columnSums: UnsafePointer<Double>, count n: Double, d: Int) -> Double {
        guard n > 0 else { return 0 }
        var mean = 0.0
        for k in 0..<d { mean += columnSums[k] * columnSums[k] }
        return max(0, s - mean / n)
    }
}
