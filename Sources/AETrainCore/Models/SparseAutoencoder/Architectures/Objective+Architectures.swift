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

    /// R = Z W + 1 aᵀ − X into `g` (not yet scaled: AuxK reads it); returns Σ‖R_i‖² and Σ|Z_ij|.
    /// `active`: the sparse kernels over Z's nonzeros; nil: the dense product.
    static func residual<T: BLASScalar>(
        g: UnsafeMutablePointer<T>, z: UnsafePointer<T>, active: ActiveUnits<T>?, x: UnsafePointer<T>,
        W: UnsafePointer<T>, a: UnsafePointer<T>, mr: Int, d: Int, h: Int
    ) -> (squaredError: T, activationSum: T) {
        guard mr > 0 else { return (0, 0) }
        var l1: T = 0
        if let active {
            for i in 0..<mr {
                let gi = g + i * d, xi = x + i * d
                for k in 0..<d { gi[k] = a[k] - xi[k] }
                for e in active.entries(ofRow: i) {
                    T.axpy(d, active.value[e], W + Int(active.unit[e]) * d, gi)
                    l1 += abs(active.value[e])
                }
            }
        } else {
            T.gemm(transA: false, transB: false, m: mr, n: d, k: h, alpha: 1, a: z, lda: h, b: W, ldb: d, beta: 0, c: g, ldc: d)
            for i in 0..<mr {
                let gi = g + i * d, xi = x + i * d
                for k in 0..<d { gi[k] += a[k] - xi[k] }
            }
            l1 = T.asum(mr * h, z)
        }
        return (T.dot(mr * d, g, g), l1)
    }

    /// Backward with the dense products (see the type's comment). `gz`: (mr, h) scratch.
    static func architectureBackward<T: BLASScalar>(
        dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>, dW: UnsafeMutablePointer<T>, da: UnsafeMutablePointer<T>,
        gz: UnsafeMutablePointer<T>, g: UnsafePointer<T>, z: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>,
        aux: ActiveUnits<T>?, ga: UnsafePointer<T>?, jump: JumpTerms<T>?, mr: Int, d: Int, h: Int
    ) {
        da.update(repeating: 0, count: d)
        db.update(repeating: 0, count: h)
        if let jump { jump.dTheta.update(repeating: 0, count: h) }
        guard mr > 0 else { dW.update(repeating: 0, count: h * d); dV.update(repeating: 0, count: d * h); return }
        T.gemm(transA: true, transB: false, m: h, n: d, k: mr, alpha: 1, a: z, lda: h, b: g, ldb: d, beta: 0, c: dW, ldc: d)
        columnSum(da, g, rows: mr, cols: d)
        if let aux, let ga { auxDecoderBackward(dW: dW, aux: aux, ga: ga, mr: mr, d: d) }
        T.gemm(transA: false, transB: true, m: mr, n: h, k: d, alpha: 1, a: g, lda: d, b: W, ldb: d, beta: 0, c: gz, ldc: h)
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
        T.gemm(transA: true, transB: false, m: d, n: h, k: mr, alpha: 1, a: x, lda: d, b: gz, ldb: h, beta: 0, c: dV, ldc: h)
    }

    /// Backward over the active entries only (`Objective+Sparse.swift`'s scheme): dVᵀ's rows
    /// accumulated in `dVt` (h, d), transposed once.
    static func sparseArchitectureBackward<T: BLASScalar>(
        dV: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>, dW: UnsafeMutablePointer<T>, da: UnsafeMutablePointer<T>,
        dVt: UnsafeMutablePointer<T>, active: ActiveUnits<T>, g: UnsafePointer<T>, x: UnsafePointer<T>, W: UnsafePointer<T>,
        aux: ActiveUnits<T>?, ga: UnsafePointer<T>?, jump: JumpTerms<T>?, mr: Int, d: Int, h: Int
    ) {
        dW.update(repeating: 0, count: h * d)
        da.update(repeating: 0, count: d)
        db.update(repeating: 0, count: h)
        dVt.update(repeating: 0, count: h * d)
        if let jump { jump.dTheta.update(repeating: 0, count: h) }
        for i in 0..<mr {
            for e in active.entries(ofRow: i) {           // dW_j += Z_ij G_i
                T.axpy(d, active.value[e], g + i * d, dW + Int(active.unit[e]) * d)
            }
        }
        columnSum(da, g, rows: mr, cols: d)
        if let aux, let ga { auxDecoderBackward(dW: dW, aux: aux, ga: ga, mr: mr, d: d) }
        for i in 0..<mr {
            let gi = g + i * d, xi = x + i * d
            for e in active.entries(ofRow: i) {
                let j = Int(active.unit[e])
                let gp = T.dot(d, gi, W + j * d)
                db[j] += gp
                T.axpy(d, gp, xi, dVt + j * d)
            }
            if let aux, let ga {
                for e in aux.entries(ofRow: i) {
                    let j = Int(aux.unit[e])
                    let gp = T.dot(d, ga + i * d, W + j * d)
                    db[j] += gp
                    T.axpy(d, gp, xi, dVt + j * d)
                }
            }
            if let jump {
                JumpReLU.thresholdGradient(dTheta: jump.dTheta, pre: jump.pre + i * h, theta: jump.theta, bandwidth: jump.bandwidth,
                                           l0Gradient: jump.l0Gradient, h: h) { T.dot(d, gi, W + $0 * d) }
            }
        }
        if mr > 0 { T.transpose(rows: h, cols: d, dVt, dV) } else { dV.update(repeating: 0, count: d * h) }
    }

    /// dW_j += relu(π_ij)·Ga_i for the AuxK entries.
    private static func auxDecoderBackward<T: BLASScalar>(dW: UnsafeMutablePointer<T>, aux: ActiveUnits<T>, ga: UnsafePointer<T>,
                                                          mr: Int, d: Int) {
        for i in 0..<mr {
            for e in aux.entries(ofRow: i) { T.axpy(d, aux.value[e], ga + i * d, dW + Int(aux.unit[e]) * d) }
        }
    }
}
