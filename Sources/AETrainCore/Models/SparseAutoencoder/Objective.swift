/// The exercise sheet's sparse autoencoder objective, forward and backward, for the rows of
/// the global batch that one rank holds. Shape letters: see `ModelShape`.
///
///     P  = X V + 1 bᵀ            (mr, h)
///     Z  = relu(P)               (mr, h)
///     X̂  = Z W + 1 aᵀ            (mr, d)
///     R  = X̂ − X                 (mr, d)
///     μ_j = (1/m) Σ_i Z_ij       (h)  over the *global* batch (needs the other ranks)
///
///     rec = (1/m) Σ_i ‖R_i‖²      spa = (1/m) Σ_ij Z_ij
///     ent = Σ_j 1/μ_j             reg = ‖W‖_F²
///     loss = rec + λ spa + ε ent + η reg
///
/// Every sum over examples is split into per-rank partial sums with the global m as divisor;
/// `DistributedStep` does the reductions. Backward functions *write* their gradients
/// (BLAS beta = 0), so nothing needs zeroing between steps.
public enum Objective {

    /// Encoder forward: `Z = relu(X V + 1 bᵀ)` and the column sums `Σ_i Z_ij` of this rank's rows.
    /// Returns the number of active entries (Z_ij > 0), for the L0 metric.
    ///
    /// - z: (mr, h) output; also holds P before the ReLU.
    /// - columnSums: (h) output.
    /// - x: (mr, d), V: (d, h), b: (h).
    @discardableResult
    public static func encoderForward<T: BLASScalar>(
        z: UnsafeMutablePointer<T>, columnSums: UnsafeMutablePointer<T>,
        x: UnsafePointer<T>, V: UnsafePointer<T>, b: UnsafePointer<T>,
        mr: Int, d: Int, h: Int, products: Products<T> = .blas, trace: TraceRecorder? = nil
    ) -> T {
        columnSums.update(repeating: 0, count: h)
        guard mr > 0 else { return 0 }
        trace?.begin(.encoderProduct)
        products.gemm(.encoder, transA: false, transB: false, m: mr, n: h, k: d,
               alpha: 1, a: x, lda: d, b: V, ldb: h, beta: 0, c: z, ldc: h)
        trace?.end()
        // z = relu(z + b), relu'(0) = 0 as in PyTorch; column sums in row order (CKernels).
        return T(T.reluBias(z, columnSums, b, rows: mr, h: h))
    }

    /// The entropy term from the global column means, with the mean floored at `floor`:
    /// ent = Σ_j 1/max(μ_j, δ). Also writes the term's gradient with respect to each Z_ij,
    /// which is the same for every row: ∂(ε·ent)/∂Z_ij = −(ε/m) / μ_j² (0 where μ_j ≤ δ,
    /// where the floored term is constant).
    ///
    /// Returns the sum over the units with μ_j > δ: a unit that did not fire adds the constant
    /// 1/δ (10⁶ by default) to the objective and nothing to its gradient, and counting it would
    /// bury the live units' terms (in float32, entirely) under 10⁶ per dead unit; dead units
    /// are counted on their own (`dead`).
    ///
    /// - coefficient: (h) output. - columnSums: (h), Σ_i Z_ij over the global batch.
    public static func entropy<T: BLASScalar>(
        coefficient: UnsafeMutablePointer<T>, columnSums: UnsafePointer<T>,
        m: Int, h: Int, epsilon: T, floor delta: T
    ) -> T {
        var ent: T = 0
        let invM = 1 / T(m)
        for j in 0..<h {
            let mu = columnSums[j] * invM
            if mu > delta {
                ent += 1 / mu
                coefficient[j] = -epsilon * invM / (mu * mu)
            } else {
                coefficient[j] = 0
            }
        }
        return ent
    }

    /// Decoder forward and the reconstruction residual: `G = (2/m)(Z W + 1 aᵀ − X)`, the
    /// gradient of rec with respect to X̂. Returns this rank's partial sums Σ‖R_i‖² and Σ Z_ij.
    ///
    /// - g: (mr, d) output. - z: (mr, h), x: (mr, d), W: (h, d), a: (d).
    public static func decoderForward<T: BLASScalar>(
        g: UnsafeMutablePointer<T>,
        z: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>, a: UnsafePointer<T>,
        mr: Int, m: Int, d: Int, h: Int, products: Products<T> = .blas, trace: TraceRecorder? = nil
    ) -> (squaredError: T, activationSum: T) {
        guard mr > 0 else { return (0, 0) }
        trace?.begin(.decoderProduct)
        products.gemm(.decoder, transA: false, transB: false, m: mr, n: d, k: h,
               alpha: 1, a: z, lda: h, b: W, ldb: d, beta: 0, c: g, ldc: d)
        trace?.end()
        for i in 0..<mr {
            let gi = g + i * d, xi = x + i * d
            for k in 0..<d { gi[k] += a[k] - xi[k] }  // R = X̂ − X
        }
        // Reductions through BLAS: a Swift float reduction loop is not vectorized.
        let sse = T.dot(mr * d, g, g)
        T.scal(mr * d, 2 / T(m), g)               // G = (2/m) R
        let l1 = T.asum(mr * h, z)                 // Z ≥ 0, so Σ|Z| = Σ Z
        return (sse, l1)
    }

    /// Backward through the decoder for this rank's rows (the data terms; the regularizer's
    /// 2ηW is added once after the allreduce, not once per rank). Runs first, so that the
    /// allreduce of dW can start while the encoder's gradients are computed.
    ///
    ///     dW   = Zᵀ G                                     (h, d)
    ///     da   = Σ_i G_i                                  (d)
    ///
    /// - g: (mr, d) from `decoderForward`; z: (mr, h).
    public static func decoderBackward<T: BLASScalar>(
        dW: UnsafeMutablePointer<T>, da: UnsafeMutablePointer<T>,
        g: UnsafePointer<T>, z: UnsafePointer<T>,
        mr: Int, d: Int, h: Int, products: Products<T> = .blas, trace: TraceRecorder? = nil
    ) {
        da.update(repeating: 0, count: d)
        guard mr > 0 else { dW.update(repeating: 0, count: h * d); return }
        trace?.begin(.decoderBackwardProduct)
        products.gemm(transA: true, transB: false, m: h, n: d, k: mr,
               alpha: 1, a: z, lda: h, b: g, ldb: d, beta: 0, c: dW, ldc: d)
        trace?.end()
        columnSum(da, g, rows: mr, cols: d)
    }

    /// Backward into Z, through the ReLU and the encoder, for this rank's rows (rec, λ·spa,
    /// ε·ent).
    ///
    ///     G_Z  = G Wᵀ + λ/m + c_j                         (mr, h)   c from `entropy`
    ///     G_P  = G_Z ⊙ [Z > 0]                            (mr, h)
    ///     dV   = Xᵀ G_P                                   (d, h)
    ///     db   = Σ_i G_P_i                                (h)
    ///
    /// - gz: (mr, h) scratch, holds G_Z then G_P.
    /// - g: (mr, d) from `decoderForward`; z: (mr, h); x: (mr, d); W: (h, d).
    /// - entCoefficient: (h) from `entropy`.
    /// - progress: called between the products (lets reductions in flight advance).
    public static func encoderBackward<T: BLASScalar>(
        dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>,
        gz: UnsafeMutablePointer<T>,
        g: UnsafePointer<T>, z: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>,
        entCoefficient: UnsafePointer<T>, lambda: T,
        mr: Int, m: Int, d: Int, h: Int, progress: () -> Void = {}, products: Products<T> = .blas, trace: TraceRecorder? = nil
    ) {
        db.update(repeating: 0, count: h)
        guard mr > 0 else { dV.update(repeating: 0, count: d * h); return }
        trace?.begin(.encoderBackwardProduct)
        products.gemm(.decoderTransposed, transA: false, transB: true, m: mr, n: h, k: d,
               alpha: 1, a: g, lda: d, b: W, ldb: d, beta: 0, c: gz, ldc: h)
        trace?.end()
        progress()
        let l1Gradient = lambda / T(m)
        // G_P = [Z > 0] ⊙ ((G Wᵀ + λ/m) + c_j), db = Σ_i G_P_i, in row order (CKernels).
        T.reluBackward(gz, db, z, entCoefficient, l1Gradient: l1Gradient, rows: mr, h: h)
        progress()
        trace?.begin(.encoderWeightProduct)
        products.gemm(transA: true, transB: false, m: d, n: h, k: mr,
               alpha: 1, a: x, lda: d, b: gz, ldb: h, beta: 0, c: dV, ldc: h)
        trace?.end()
    }

    /// sums[k] += Σ_i a[i, k] over a (rows, cols).
    @inline(__always)
    static func columnSum<T: BLASScalar>(_ sums: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, rows: Int, cols: Int) {
        for i in 0..<rows {
            let ai = a + i * cols
            for k in 0..<cols { sums[k] += ai[k] }
        }
    }

    /// Adds the regularizer's gradient 2ηW to dW and returns reg = ‖W‖_F², in one pass over W
    /// (CKernels): dW_k = fma(2η, W_k, dW_k), ‖W‖² summed in double over fixed lanes, so
    /// neither depends on the number of threads.
    public static func regularizer<T: BLASScalar>(
        dW: UnsafeMutablePointer<T>, W: UnsafePointer<T>, eta: T, count: Int
    ) -> T {
        T.regularizer(dW, W, twoEta: 2 * eta, count: count)
    }
}
