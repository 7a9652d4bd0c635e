/// Decoder atoms kept at unit norm (`--decoder-norm unit`): the rows w_j of W (h, d).
///
/// On the sphere ‖w_j‖ = 1, the part of the gradient g_j = ∂loss/∂w_j that moves along the
/// sphere is its projection onto the tangent space at w_j; the rest only changes the norm,
/// which renormalizing undoes:
///
///     g_j ← g_j − ((g_j · w_j) / (w_j · w_j)) w_j        after the gradient's sum, before Adam
///     w_j ← w_j / ‖w_j‖                                   after Adam's step
///
/// (w_j · w_j is 1 up to rounding; dividing by it makes the projection exact for the row as
/// stored.) The regularizer's 2ηw_j lies along w_j: the projection removes it, and ‖W‖² = h.
///
/// Each row on its own, its sums in double over four fixed lanes: the same bits whichever
/// rank computes a row and however many rows it computes (`--deterministic`, shared memory's
/// rows per rank).
///
/// The float32 specializations are explicit: the reductions call these through generic code
/// that the compiler does not specialize, and the generic loops were 30 times slower.
public enum UnitNormDecoder {
    /// Projects rows `rows` of dW (h, d) onto the tangent spaces of W's rows.
    @_specialize(where T == Float)
    public static func project<T: BLASScalar>(dW: UnsafeMutablePointer<T>, W: UnsafePointer<T>, rows: Range<Int>, d: Int) {
        for j in rows {
            let g = dW + j * d, w = W + j * d
            let ww = dot(w, w, d)
            guard ww > 0 else { continue }
            let c = T(dot(g, w, d) / ww)
            for k in 0..<d { g[k] -= c * w[k] }
        }
    }

    /// Scales rows `rows` of W (h, d) to unit norm (a zero row stays zero).
    @_specialize(where T == Float)
    public static func normalize<T: BLASScalar>(W: UnsafeMutablePointer<T>, rows: Range<Int>, d: Int) {
        for j in rows {
            let w = W + j * d
            let ww = dot(w, w, d)
            guard ww > 0 else { continue }
            let scale = T(1 / ww.squareRoot())
            for k in 0..<d { w[k] *= scale }
        }
    }

    /// w ← u / ‖u‖ (count values; u's `stride` apart: a row, or a column of V (d, h) with
    /// stride h, each atom then starting as its unit's encoder direction). Only writes w.
    /// Returns false, writing nothing, for a zero u.
    @discardableResult
    @_specialize(where T == Float)
    public static func writeUnit<T: BLASScalar>(_ w: UnsafeMutablePointer<T>, from u: UnsafePointer<T>, stride: Int, count: Int) -> Bool {
        var uu = 0.0
        for k in 0..<count { uu += Double(u[k * stride]) * Double(u[k * stride]) }
        guard uu > 0 else { return false }
        let scale = T(1 / uu.squareRoot())
        for k in 0..<count { w[k] = u[k * stride] * scale }
        return true
    }

    /// Σ_k x_k y_k in double, over four lanes added in a fixed order.
    @inline(__always)
    public static func dot<T: BLASScalar>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ n: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var k = 0
        while k + 4 <= n {
            s0 += Double(x[k]) * Double(y[k]); s1 += Double(x[k + 1]) * Double(y[k + 1])
            s2 += Double(x[k + 2]) * Double(y[k + 2]); s3 += Double(x[k + 3]) * Double(y[k + 3])
            k += 4
        }
        while k < n { s0 += Double(x[k]) * Double(y[k]); k += 1 }
        return (s0 + s1) + (s2 + s3)
    }
}
