import CKernels
import COpenBLAS

/// A floating-point type that OpenBLAS multiplies: `Float` (sgemm) in training, `Double`
/// (dgemm) in the gradient checks.
///
/// Everything numeric in the model is generic over this protocol so that the same code
/// that trains in float32 can be checked against finite differences in float64.
public protocol BLASScalar: BinaryFloatingPoint, Codable, Sendable {
    /// Row-major `C = alpha · op(A) · op(B) + beta · C`, with op(A) (M, K), op(B) (K, N),
    /// C (M, N). Leading dimensions are row strides in elements.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Σ x_i y_i over n elements (BLAS dot: vectorized, unlike a Swift reduction loop).
    static func dot(_ n: Int, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Self
    /// Σ |x_i| over n elements.
    static func asum(_ n: Int, _ x: UnsafePointer<Self>) -> Self
    /// y ← alpha x + y over n elements.
    static func axpy(_ n: Int, _ alpha: Self, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>)
    /// x ← alpha x over n elements.
    static func scal(_ n: Int, _ alpha: Self, _ x: UnsafeMutablePointer<Self>)
    /// b ← aᵀ: a (rows, cols) row-major into b (cols, rows) (OpenBLAS omatcopy, cache-blocked).
    static func transpose(rows: Int, cols: Int, _ a: UnsafePointer<Self>, _ b: UnsafeMutablePointer<Self>)
    /// The C Adam loop for this type (CKernels).
    static func adamKernel(_ p: UnsafeMutablePointer<Self>, _ m: UnsafeMutablePointer<Self>, _ v: UnsafeMutablePointer<Self>,
                           _ g: UnsafePointer<Self>, _ n: Int, _ b1: Self, _ b2: Self, _ stepSize: Self,
                           _ invSqrtBC2: Self, _ eps: Self)

    /// The C Adam loop over the sum of `rows` gradients `stride` apart, 2η·p added first if
    /// `twoEta` is given (CKernels/adam.c).
    static func adamSumKernel(_ p: UnsafeMutablePointer<Self>, _ m: UnsafeMutablePointer<Self>, _ v: UnsafeMutablePointer<Self>,
                              _ g: UnsafePointer<Self>, stride: Int, rows: Int, _ n: Int, twoEta: Self?, _ b1: Self, _ b2: Self,
                              _ stepSize: Self, _ invSqrtBC2: Self, _ eps: Self)

    /// Encoder forward after the product (CKernels/objective.c): z = relu(z + b), column sums
    /// added, the number of positive entries returned.
    static func reluBias(_ z: UnsafeMutablePointer<Self>, _ columnSums: UnsafeMutablePointer<Self>, _ b: UnsafePointer<Self>,
                         rows: Int, h: Int) -> Int
    /// Encoder backward through the ReLU (CKernels/objective.c): gz = [z > 0] ⊙ (gz + l1 + c_j), db += column sums.
    static func reluBackward(_ gz: UnsafeMutablePointer<Self>, _ db: UnsafeMutablePointer<Self>, _ z: UnsafePointer<Self>,
                             _ coefficient: UnsafePointer<Self>, l1Gradient: Self, rows: Int, h: Int)

    /// The regularizer (CKernels/objective.c): dW = fma(twoEta, W, dW); returns ‖W‖².
    static func regularizer(_ dW: UnsafeMutablePointer<Self>, _ W: UnsafePointer<Self>, twoEta: Self, count: Int) -> Self
    /// ‖W‖² as `regularizer` returns it, without touching dW (CKernels/objective.c).
    static func squaredNorm(_ W: UnsafePointer<Self>, count: Int) -> Self
    /// dst = Σ_r src[r·stride ..< r·stride + count] over `rows` rows, in row order (CKernels/sum.c).
    static func sumRows(into dst: UnsafeMutablePointer<Self>, from src: UnsafePointer<Self>, stride: Int, rows: Int, count: Int)
    /// TopK over one row (CKernels/topk.c, `TopK.select`'s rule): the at most k largest positive
    /// entries among `allowed` (nil: all) into units/values in ascending unit order; returns
    /// how many. heapUnits, heapValues: scratch (k).
    /// The sparse backward of one unit (CKernels/sparse_backward.c, `Objective.sparseBackwardUnits`).
    static func unitBackward(dW: UnsafeMutablePointer<Self>, dVt: UnsafeMutablePointer<Self>, db: UnsafeMutablePointer<Self>,
                             W: UnsafePointer<Self>, g: UnsafePointer<Self>, ga: UnsafePointer<Self>?, x: UnsafePointer<Self>,
                             mainRows: UnsafePointer<Int32>, mainValues: UnsafePointer<Self>, mainCount: Int,
                             auxRows: UnsafePointer<Int32>?, auxValues: UnsafePointer<Self>?, auxCount: Int, d: Int)
    static func topk(_ row: UnsafePointer<Self>, allowed: UnsafePointer<Bool>?, h: Int, k: Int,
                     heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<Self>,
                     units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Self>) -> Int

    /// The element kind, for the communicator's reductions.
    static var scalarKind: ScalarKind { get }

}

/// Element kinds that cross process boundaries.
public enum ScalarKind: Sendable { case float32, float64, uint64 }

@inline(__always)
private func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: BLASScalar {
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
    @inline(__always) public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float { cblas_sdot(Int32(n), x, 1, y, 1) }
    @inline(__always) public static func asum(_ n: Int, _ x: UnsafePointer<Float>) -> Float { cblas_sasum(Int32(n), x, 1) }
    @inline(__always) public static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) { cblas_saxpy(Int32(n), alpha, x, 1, y, 1) }
    @inline(__always) public static func scal(_ n: Int, _ alpha: Float, _ x: UnsafeMutablePointer<Float>) { cblas_sscal(Int32(n), alpha, x, 1) }
    @inline(__always) public static func transpose(rows: Int, cols: Int, _ a: UnsafePointer<Float>, _ b: UnsafeMutablePointer<Float>) {
        cblas_somatcopy(CblasRowMajor, CblasTrans, Int32(rows), Int32(cols), 1, a, Int32(cols), b, Int32(rows))
    }
    @inline(__always) public static func adamKernel(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                                                    _ g: UnsafePointer<Float>, _ n: Int, _ b1: Float, _ b2: Float, _ stepSize: Float,
                                                    _ invSqrtBC2: Float, _ eps: Float) {
        aet_adam_f32(p, m, v, g, n, b1, b2, stepSize, invSqrtBC2, eps)
    }
    @inline(__always) public static func adamSumKernel(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                                                       _ g: UnsafePointer<Float>, stride: Int, rows: Int, _ n: Int, twoEta: Float?, _ b1: Float, _ b2: Float,
                                                       _ stepSize: Float, _ invSqrtBC2: Float, _ eps: Float) {
        aet_adam_sum_f32(p, m, v, g, stride, rows, n, twoEta == nil ? 0 : 1, twoEta ?? 0, b1, b2, stepSize, invSqrtBC2, eps)
    }
    @inline(__always) public static func reluBias(_ z: UnsafeMutablePointer<Float>, _ columnSums: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>,
                                                  rows: Int, h: Int) -> Int {
        Int(aet_relu_bias_f32(z, columnSums, b, rows, h))
    }
    @inline(__always) public static func reluBackward(_ gz: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>,
                                                      _ coefficient: UnsafePointer<Float>, l1Gradient: Float, rows: Int, h: Int) {
        aet_relu_backward_f32(gz, db, z, coefficient, l1Gradient, rows, h)
    }
    @inline(__always) public static func regularizer(_ dW: UnsafeMutablePointer<Float>, _ W: UnsafePointer<Float>, twoEta: Float, count: Int) -> Float {
        Float(aet_regularizer_f32(dW, W, twoEta, count))
    }
    @inline(__always) public static func squaredNorm(_ W: UnsafePointer<Float>, count: Int) -> Float { Float(aet_squared_norm_f32(W, count)) }
    @inline(__always) public static func sumRows(into dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, stride: Int, rows: Int, count: Int) {
        aet_sum_rows_f32(dst, src, stride, rows, count)
    }
    @inline(__always) public static func unitBackward(dW: UnsafeMutablePointer<Float>, dVt: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>,
                                                      W: UnsafePointer<Float>, g: UnsafePointer<Float>, ga: UnsafePointer<Float>?, x: UnsafePointer<Float>,
                                                      mainRows: UnsafePointer<Int32>, mainValues: UnsafePointer<Float>, mainCount: Int,
                                                      auxRows: UnsafePointer<Int32>?, auxValues: UnsafePointer<Float>?, auxCount: Int, d: Int) {
        aet_unit_backward_f32(dW, dVt, db, W, g, ga, x, mainRows, mainValues, mainCount, auxRows, auxValues, auxCount, d)
    }
    @inline(__always) public static func topk(_ row: UnsafePointer<Float>, allowed: UnsafePointer<Bool>?,
                                              h: Int, k: Int, heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<Float>,
                                              units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>) -> Int {
        Int(aet_topk_f32(row, allowed, h, k, heapUnits, heapValues, units, values))
    }
    public static var scalarKind: ScalarKind { .float32 }
}

extension Double: BLASScalar {
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
    @inline(__always) public static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double { cblas_ddot(Int32(n), x, 1, y, 1) }
    @inline(__always) public static func asum(_ n: Int, _ x: UnsafePointer<Double>) -> Double { cblas_dasum(Int32(n), x, 1) }
    @inline(__always) public static func axpy(_ n: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) { cblas_daxpy(Int32(n), alpha, x, 1, y, 1) }
    @inline(__always) public static func scal(_ n: Int, _ alpha: Double, _ x: UnsafeMutablePointer<Double>) { cblas_dscal(Int32(n), alpha, x, 1) }
    @inline(__always) public static func transpose(rows: Int, cols: Int, _ a: UnsafePointer<Double>, _ b: UnsafeMutablePointer<Double>) {
        cblas_domatcopy(CblasRowMajor, CblasTrans, Int32(rows), Int32(cols), 1, a, Int32(cols), b, Int32(rows))
    }
    @inline(__always) public static func adamKernel(_ p: UnsafeMutablePointer<Double>, _ m: UnsafeMutablePointer<Double>, _ v: UnsafeMutablePointer<Double>,
                                                    _ g: UnsafePointer<Double>, _ n: Int, _ b1: Double, _ b2: Double, _ stepSize: Double,
                                                    _ invSqrtBC2: Double, _ eps: Double) {
        aet_adam_f64(p, m, v, g, n, b1, b2, stepSize, invSqrtBC2, eps)
    }
    @inline(__always) public static func adamSumKernel(_ p: UnsafeMutablePointer<Double>, _ m: UnsafeMutablePointer<Double>, _ v: UnsafeMutablePointer<Double>,
                                                       _ g: UnsafePointer<Double>, stride: Int, rows: Int, _ n: Int, twoEta: Double?, _ b1: Double, _ b2: Double,
                                                       _ stepSize: Double, _ invSqrtBC2: Double, _ eps: Double) {
        aet_adam_sum_f64(p, m, v, g, stride, rows, n, twoEta == nil ? 0 : 1, twoEta ?? 0, b1, b2, stepSize, invSqrtBC2, eps)
    }
    @inline(__always) public static func reluBias(_ z: UnsafeMutablePointer<Double>, _ columnSums: UnsafeMutablePointer<Double>, _ b: UnsafePointer<Double>,
                                                  rows: Int, h: Int) -> Int {
        Int(aet_relu_bias_f64(z, columnSums, b, rows, h))
    }
    @inline(__always) public static func reluBackward(_ gz: UnsafeMutablePointer<Double>, _ db: UnsafeMutablePointer<Double>, _ z: UnsafePointer<Double>,
                                                      _ coefficient: UnsafePointer<Double>, l1Gradient: Double, rows: Int, h: Int) {
        aet_relu_backward_f64(gz, db, z, coefficient, l1Gradient, rows, h)
    }
    @inline(__always) public static func regularizer(_ dW: UnsafeMutablePointer<Double>, _ W: UnsafePointer<Double>, twoEta: Double, count: Int) -> Double {
        Double(aet_regularizer_f64(dW, W, twoEta, count))
    }
    @inline(__always) public static func squaredNorm(_ W: UnsafePointer<Double>, count: Int) -> Double { Double(aet_squared_norm_f64(W, count)) }
    @inline(__always) public static func sumRows(into dst: UnsafeMutablePointer<Double>, from src: UnsafePointer<Double>, stride: Int, rows: Int, count: Int) {
        aet_sum_rows_f64(dst, src, stride, rows, count)
    }
    @inline(__always) public static func unitBackward(dW: UnsafeMutablePointer<Double>, dVt: UnsafeMutablePointer<Double>, db: UnsafeMutablePointer<Double>,
                                                      W: UnsafePointer<Double>, g: UnsafePointer<Double>, ga: UnsafePointer<Double>?, x: UnsafePointer<Double>,
                                                      mainRows: UnsafePointer<Int32>, mainValues: UnsafePointer<Double>, mainCount: Int,
                                                      auxRows: UnsafePointer<Int32>?, auxValues: UnsafePointer<Double>?, auxCount: Int, d: Int) {
        aet_unit_backward_f64(dW, dVt, db, W, g, ga, x, mainRows, mainValues, mainCount, auxRows, auxValues, auxCount, d)
    }
    @inline(__always) public static func topk(_ row: UnsafePointer<Double>, allowed: UnsafePointer<Bool>?,
                                              h: Int, k: Int, heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<Double>,
                                              units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Double>) -> Int {
        Int(aet_topk_f64(row, allowed, h, k, heapUnits, heapValues, units, values))
    }
    public static var scalarKind: ScalarKind { .float64 }
}

/// Denormal floats flushed to zero in the calling thread (the training thread): late in
/// training, tiny gradients squared underflow into denormals, which x86 processes in a slow
/// microcode path; a value below 1.2e-38 changes nothing a float32 model can show.
public enum Denormals {
    public static func flushToZero() { aet_flush_denormals() }
}

/// OpenBLAS's worker-thread count for this process.
public enum BLASThreads {
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
