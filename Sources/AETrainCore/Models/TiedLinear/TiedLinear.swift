/// The sheet's Exercise 2: a linear autoencoder with tied weights, s = Wᵀx, x̂ = W s, W (d, k),
/// trained on centred data by the same distributed Adam loop. Its loss and gradient:
///
///     S = X W                     (mr, k)
///     R = S Wᵀ − X                (mr, d)
///     rec = (1/m) Σ_i ‖R_i‖²
///     ∂rec/∂W = (2/m) (Rᵀ S + Xᵀ R W)     (d, k)
public enum TiedLinear {
    /// Writes the gradient of this rank's rows into `grad` (d, k) and returns their Σ‖R_i‖².
    /// - s: (mr, k), r: (mr, d), rw: (mr, k) scratch.
    public static func lossAndGradient<T: BLASScalar>(
        grad: UnsafeMutablePointer<T>, s: UnsafeMutablePointer<T>, r: UnsafeMutablePointer<T>, rw: UnsafeMutablePointer<T>,
        x: UnsafePointer<T>, W: UnsafePointer<T>, mr: Int, m: Int, d: Int, k: Int
    ) -> T {
        guard mr > 0 else { grad.update(repeating: 0, count: d * k); return 0 }
        T.gemm(transA: false, transB: false, m: mr, n: k, k: d, alpha: 1, a: x, lda: d, b: W, ldb: k, beta: 0, c: s, ldc: k)
        T.gemm(transA: false, transB: true, m: mr, n: d, k: k, alpha: 1, a: s, lda: k, b: W, ldb: k, beta: 0, c: r, ldc: d)
        T.axpy(mr * d, -1, x, r)
        let sse = T.dot(mr * d, r, r)
        let scale = 2 / T(m)
        T.gemm(transA: true, transB: false, m: d, n: k, k: mr, alpha: scale, a: r, lda: d, b: s, ldb: k, beta: 0, c: grad, ldc: k)
        T.gemm(transA: false, transB: false, m: mr, n: k, k: d, alpha: 1, a: r, lda: d, b: W, ldb: k, beta: 0, c: rw, ldc: k)
        T.gemm(transA: true, transB: false, m: d, n: k, k: mr, alpha: scale, a: x, lda: d, b: rw, ldb: k, beta: 1, c: grad, ldc: k)
        return sse
    }
}
