/// The decoder forward and both backward functions over the nonzero activations only: the
/// same maths as `Objective.swift`, for a Z that is mostly zero.
///
/// After the ReLU, a sparse model keeps about 1% of Z nonzero. The encoder's product X V is
/// needed in full (it decides which units fire), but the other four products only touch
/// entries with Z_ij > 0: row i of Z W is Σ_{j active} Z_ij W_j, row j of Zᵀ G is
/// Σ_{i: j active} Z_ij G_i, and G_P is zero wherever Z is. With n active entries each costs
/// n·d multiply-adds (BLAS level 1 on rows of length d) instead of mr·h·d.
///
/// Shapes as in `Objective`; `active` holds Z's nonzeros (`ActiveUnits.gather`).
extension Objective {

    /// Decoder forward over the active entries: `G = (2/m)(Z W + 1 aᵀ − X)`. Returns this
    /// rank's partial sums Σ‖R_i‖² and Σ Z_ij, as `decoderForward` does.
    ///
    /// - g: (mr, d) output. - x: (mr, d), W: (h, d), a: (d).
    public static func sparseDecoderForward<T: BLASScalar>(
        g: UnsafeMutablePointer<T>,
        active: ActiveUnits<T>, x: UnsafePointer<T>, W: UnsafePointer<T>, a: UnsafePointer<T>,
        mr: Int, m: Int, d: Int
    ) -> (squaredError: T, activationSum: T) {
        precondition(active.rows == mr)
        guard mr > 0 else { return (0, 0) }
        var l1: T = 0
        for i in 0..<mr {
            let gi = g + i * d, xi = x + i * d
            for k in 0..<d { gi[k] = a[k] - xi[k] }
            for e in active.entries(ofRow: i) {           // R_i += Z_ij W_j
                T.axpy(d, active.value[e], W + Int(active.unit[e]) * d, gi)
                l1 += active.value[e]
            }
        }
        let sse = T.dot(mr * d, g, g)
        T.scal(mr * d, 2 / T(m), g)               // G = (2/m) R
        return (sse, l1)
    }

    /// Decoder backward over the active entries: dW = Zᵀ G (rows of inactive units are zero),
    /// da = Σ_i G_i.
    ///
    /// - dW: (h, d), da: (d) outputs. - g: (mr, d).
    public static func sparseDecoderBackward<T: BLASScalar>(
        dW: UnsafeMutablePointer<T>, da: UnsafeMutablePointer<T>,
        active: ActiveUnits<T>, g: UnsafePointer<T>,
        mr: Int, d: Int, h: Int
    ) {
        precondition(active.rows == mr)
        dW.update(repeating: 0, count: h * d)
        da.update(repeating: 0, count: d)
        for i in 0..<mr {
            for e in active.entries(ofRow: i) {           // dW_j += Z_ij G_i
                T.axpy(d, active.value[e], g + i * d, dW + Int(active.unit[e]) * d)
            }
        }
        columnSum(da, g, rows: mr, cols: d)
    }

    /// Encoder backward over the active entries. G_P is zero off them, so
    ///
    ///     G_P_ij = G_i · W_j + λ/m + c_j        for Z_ij > 0
    ///     db_j   = Σ_i G_P_ij
    ///     dVᵀ_j  = Σ_i G_P_ij X_i               accumulated as rows of dVᵀ (h, d), contiguous,
    ///     dV     = (dVᵀ)ᵀ                        then transposed once (cache-blocked)
    ///
    /// - dV: (d, h), db: (h) outputs. - dVt: (h, d) scratch.
    /// - g: (mr, d), x: (mr, d), W: (h, d), entCoefficient: (h).
    public static func sparseEncoderBackward<T: BLASScalar>(
        dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>, dVt: UnsafeMutablePointer<T>,
        active: ActiveUnits<T>, g: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>,
        entCoefficient: UnsafePointer<T>, lambda: T,
        mr: Int, m: Int, d: Int, h: Int
    ) {
        precondition(active.rows == mr)
        db.update(repeating: 0, count: h)
        dVt.update(repeating: 0, count: h * d)
        let l1Gradient = lambda / T(m)
        for i in 0..<mr {
            let gi = g + i * d, xi = x + i * d
            for e in active.entries(ofRow: i) {
                let j = Int(active.unit[e])
                let gp = T.dot(d, gi, W + j * d) + l1Gradient + entCoefficient[j]
                db[j] += gp
                T.axpy(d, gp, xi, dVt + j * d)
            }
        }
        T.transpose(rows: h, cols: d, dVt, dV)
    }
}
