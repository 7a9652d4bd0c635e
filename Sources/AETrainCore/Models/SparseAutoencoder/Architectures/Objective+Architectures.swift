/// The decoder and the backward pass of topk, batchtopk and jumprelu: relu's maths
/// (`Objective.swift`) with the activation's own mask, AuxK's terms and JumpReLU's threshold
/// gradient, on the dense or the sparse kernels. relu keeps its own functions (and its order
/// of float operations).
///
///     R    = Z W + 1 aᵀ − X             G = (2/m) R          (mr, d)
///     dW   = Zᵀ G  (+ AuxK's Σ_i relu(π_ij) Ga_i on S_i)
///     da   = Σ_i G_i
///     G_P  = (G Wᵀ) ⊙ [Z ≠ 0]  (+ AuxK's Ga_i · W_j on S_i)
///     dV   = Xᵀ G_P,   db = Σ_i G_P_i
///     dθ   (jumprelu, `JumpReLU`)
///
/// Shapes as in `Objective`. `aux` and `ga` (AuxK, nil without), `jump` (jumprelu, nil otherwise).
extension Objective {
    /// JumpReLU's inputs to the backward pass.
    struct JumpTerms<T: BLASScalar> {
        var dTheta: UnsafeMutablePointer<T>   // (h) output
        var pre: UnsafePointer<T>             // (mr, h) π
        var theta: UnsafePointer<T>           // (h)
        var bandwidth: T
        var l0Gradient: T                     // λ/m
    }

    /// R = Z W + 1 aᵀ − X into `g` with the dense product (not yet scaled: AuxK reads it);
    /// returns Σ‖R_i‖² and Σ|Z_ij|. The sparse kernels: `sparseResidualRows`, then `residualSums`.
    static func residual<T: BLASScalar>(
        g: UnsafeMutablePointer<T>, z: UnsafePointer<T>, x: UnsafePointer<T>,
        W: UnsafePointer<T>, a: UnsafePointer<T>, mr: Int, d: Int, h: Int, products: Products<T> = .blas
    ) -> (squaredError: T, activationSum: T) {
        guard mr > 0 else { return (0, 0) }
        products.gemm(.decoder, transA: false, transB: false, m: mr, n: d, k: h, alpha: 1, a: z, lda: h, b: W, ldb: d, beta: 0, c: g, ldc: d)
        for i in 0..<mr {
            let gi = g + i * d, xi = x + i * d
            for k in 0..<d { gi[k] += a[k] - xi[k] }
        }
        return (T.dot(mr * d, g, g), T.asum(mr * h, z))
    }

    /// R's rows `rows` over Z's nonzeros: R_i = a − X_i + Σ_j Z_ij W_j.
    @_specialize(where T == Float)
    static func sparseResidualRows<T: BLASScalar>(_ rows: Range<Int>, g: UnsafeMutablePointer<T>, active: ActiveUnits<T>,
                                                  x: UnsafePointer<T>, W: UnsafePointer<T>, a: UnsafePointer<T>, d: Int) {
        for i in rows {
            let gi = g + i * d, xi = x + i * d
            for k in 0..<d { gi[k] = a[k] - xi[k] }
            for e in active.entries(ofRow: i) { T.axpy(d, active.value[e], W + Int(active.unit[e]) * d, gi) }
        }
    }

    /// Σ‖R_i‖² and Σ|Z_ij| after `sparseResidualRows` over all mr rows.
    static func residualSums<T: BLASScalar>(g: UnsafePointer<T>, active: ActiveUnits<T>, mr: Int, d: Int) -> (squaredError: T, activationSum: T) {
        guard mr > 0 else { return (0, 0) }
        var l1: T = 0
        for e in 0..<active.count { l1 += abs(active.value[e]) }
        return (T.dot(mr * d, g, g), l1)
    }

    /// Backward with the dense products (see the type's comment). `gz`: (mr, h) scratch.
    static func architectureBackward<T: BLASScalar>(
        dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>, dW: UnsafeMutablePointer<T>, da: UnsafeMutablePointer<T>,
        gz: UnsafeMutablePointer<T>, g: UnsafePointer<T>, z: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>,
        aux: ActiveUnits<T>?, ga: UnsafePointer<T>?, jump: JumpTerms<T>?, mr: Int, d: Int, h: Int, products: Products<T> = .blas
    ) {
        da.update(repeating: 0, count: d)
        db.update(repeating: 0, count: h)
        if let jump { jump.dTheta.update(repeating: 0, count: h) }
        guard mr > 0 else { dW.update(repeating: 0, count: h * d); dV.update(repeating: 0, count: d * h); return }
        products.gemm(transA: true, transB: false, m: h, n: d, k: mr, alpha: 1, a: z, lda: h, b: g, ldb: d, beta: 0, c: dW, ldc: d)
        columnSum(da, g, rows: mr, cols: d)
        if let aux, let ga { auxDecoderBackward(dW: dW, aux: aux, ga: ga, mr: mr, d: d) }
        products.gemm(.decoderTransposed, transA: false, transB: true, m: mr, n: h, k: d, alpha: 1, a: g, lda: d, b: W, ldb: d, beta: 0, c: gz, ldc: h)
        for i in 0..<mr {
            let gzi = gz + i * h, zi = z + i * h
            if let jump {
                JumpReLU.thresholdGradient(dTheta: jump.dTheta, pre: jump.pre + i * h, theta: jump.theta, bandwidth: jump.bandwidth,
                                           l0Gradient: jump.l0Gradient, h: h) { gzi[$0] }
            }
            for j in 0..<h {
                if zi[j] == 0 { gzi[j] = 0 }
                db[j] += gzi[j]
            }
        }
        if let aux, let ga {
            for i in 0..<mr {
                for e in aux.entries(ofRow: i) {
                    let j = Int(aux.unit[e])
                    let gp = T.dot(d, ga + i * d, W + j * d)
                    gz[i * h + j] += gp
                    db[j] += gp
                }
            }
        }
        products.gemm(transA: true, transB: false, m: d, n: h, k: mr, alpha: 1, a: x, lda: d, b: gz, ldb: h, beta: 0, c: dV, ldc: h)
    }

    /// Units a thread of the sparse backward finishes at once: dVᵀ's rows for them are
    /// accumulated in a (block, d) buffer and written into dV (d, h) as `block` contiguous
    /// columns, 64 bytes of float32 per row of dV.
    static let sparseBlock = 16

    /// Backward over the active entries only, by unit (`ActiveColumns`): the fast step's
    /// threads share the units, balanced by their entries (`ActiveColumns.firstUnit`), and
    /// each writes whole rows of dW and whole columns of dV, so none of them needs a zeroed
    /// (h, d) buffer or a transpose pass. For unit j, rows i ascending (a row's main entry
    /// before its AuxK entry):
    ///
    ///     dW_j   = Σ_i Z_ij G_i, then + Σ_i relu(π_ij) Ga_i        (AuxK's S_i ∋ j)
    ///     gp_ij  = G_i · W_j  (AuxK: Ga_i · W_j)
    ///     db_j   = Σ_i gp_ij,   dVᵀ_j = Σ_i gp_ij X_i  →  dV[:, j]
    ///
    /// each sum in row order on one thread, so the bits do not depend on the thread count.
    /// After all units: `sparseBackwardRest` (da, and jumprelu's dθ).
    ///
    /// - units: this thread's units. - columns: Z's entries by unit; auxColumns: AuxK's
    ///   (nil without), with `ga`. - buffer: (sparseBlock, d) scratch of this thread.
    @_specialize(where T == Float)
    static func sparseBackwardUnits<T: BLASScalar>(
        _ units: Range<Int>, dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>, dW: UnsafeMutablePointer<T>,
        buffer: UnsafeMutablePointer<T>, columns: ActiveColumns<T>, auxColumns: ActiveColumns<T>?,
        g: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>, ga: UnsafePointer<T>?, d: Int, h: Int
    ) {
        let B = sparseBlock
        for start in Swift.stride(from: units.lowerBound, to: units.upperBound, by: B) {
            let end = min(start + B, units.upperBound)
            buffer.update(repeating: 0, count: (end - start) * d)
            for j in start..<end {
                let main = columns.entries(ofColumn: j)
                let aux = auxColumns?.entries(ofColumn: j) ?? 0..<0
                T.unitBackward(dW: dW + j * d, dVt: buffer + (j - start) * d, db: db + j, W: W + j * d, g: g, ga: ga, x: x,
                               mainRows: columns.row + main.lowerBound, mainValues: columns.value + main.lowerBound, mainCount: main.count,
                               auxRows: auxColumns.map { $0.row + aux.lowerBound }, auxValues: auxColumns.map { $0.value + aux.lowerBound },
                               auxCount: aux.count, d: d)
            }
            for k in 0..<d {                                   // dV[k, start..<end] = dVᵀ[start..<end, k]
                let out = dV + k * h
                for j in start..<end { out[j] = buffer[(j - start) * d + k] }
            }
        }
    }

    /// The rest of the sparse backward, on one thread: da = Σ_i G_i and jumprelu's dθ.
    static func sparseBackwardRest<T: BLASScalar>(da: UnsafeMutablePointer<T>, g: UnsafePointer<T>, W: UnsafePointer<T>,
                                                  jump: JumpTerms<T>?, mr: Int, d: Int, h: Int) {
        da.update(repeating: 0, count: d)
        columnSum(da, g, rows: mr, cols: d)
        guard let jump else { return }
        jump.dTheta.update(repeating: 0, count: h)
        for i in 0..<mr {
            JumpReLU.thresholdGradient(dTheta: jump.dTheta, pre: jump.pre + i * h, theta: jump.theta, bandwidth: jump.bandwidth,
                                       l0Gradient: jump.l0Gradient, h: h) { T.dot(d, g + i * d, W + $0 * d) }
        }
    }

    /// dW_j += relu(π_ij)·Ga_i for the AuxK entries.
    private static func auxDecoderBackward<T: BLASScalar>(dW: UnsafeMutablePointer<T>, aux: ActiveUnits<T>, ga: UnsafePointer<T>,
                                                          mr: Int, d: Int) {
        for i in 0..<mr {
            for e in aux.entries(ofRow: i) { T.axpy(d, aux.value[e], ga + i * d, dW + Int(aux.unit[e]) * d) }
        }
    }
}
