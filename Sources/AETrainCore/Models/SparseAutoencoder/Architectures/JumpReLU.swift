/// JumpReLU: z = π·H(π − θ_j), θ (h) a raw parameter in the store (`ParameterLayout`'s
/// "threshold", trained by Adam with the rest), initialized to ⟨threshold-init⟩. H(0) = 0.
///
/// Straight-through pseudo-derivatives with the rectangle kernel K(u) = 1[|u| < ½] of
/// bandwidth ε (⟨bandwidth⟩):
///
///     ∂z/∂π = H(π − θ)            ∂z/∂θ = −(θ/ε)·K((π − θ)/ε)
///     L0 = mean_i Σ_j H(π_ij − θ_j)      ∂L0/∂θ_j = −(1/ε)·K((π_ij − θ_j)/ε)   (per entry; mean over i)
///     loss = rec + λ·L0
///
/// so, with G_Z = G Wᵀ the gradient of rec with respect to z,
///
///     dθ_j = Σ_i K((π_ij − θ_j)/ε) · ( G_Z_ij·(−θ_j/ε) − λ/(m ε) )
///
/// A kept entry may be negative (where θ_j < 0), so the kept set is Z ≠ 0, not Z > 0.
enum JumpReLU {
    /// Encoder forward: π into `pre`, z = π·H(π − θ) into `z`, Σ_i |z_ij| added to
    /// `columnSums` (what "fired" reads). Returns the number of kept entries (L0's sum).
    ///
    /// - z, pre: (mr, h) outputs. - x: (mr, d), V: (d, h), b, theta: (h).
    @_specialize(where T == Float)
    static func encoderForward<T: BLASScalar>(
        z: UnsafeMutablePointer<T>, pre: UnsafeMutablePointer<T>, columnSums: UnsafeMutablePointer<T>,
        x: UnsafePointer<T>, V: UnsafePointer<T>, b: UnsafePointer<T>, theta: UnsafePointer<T>, mr: Int, d: Int, h: Int,
        products: Products<T> = .blas
    ) -> T {
        Objective.encoderProduct(pre: pre, x: x, V: V, b: b, mr: mr, d: d, h: h, products: products)
        return apply(z: z, pre: pre, columnSums: columnSums, theta: theta, rows: mr, h: h)
    }

    /// z = π·H(π − θ) of `pre` (rows, h), Σ|z| into `columnSums`; returns the kept count.
    @_specialize(where T == Float)
    static func apply<T: BLASScalar>(z: UnsafeMutablePointer<T>, pre: UnsafePointer<T>, columnSums: UnsafeMutablePointer<T>,
                                     theta: UnsafePointer<T>, rows: Int, h: Int) -> T {
        var kept = 0
        for i in 0..<rows {
            let p = pre + i * h, zi = z + i * h
            for j in 0..<h {
                if p[j] > theta[j] {
                    zi[j] = p[j]
                    columnSums[j] += abs(p[j])
                    kept += 1
                } else {
                    zi[j] = 0
                }
            }
        }
        return T(kept)
    }

    /// Adds row i's part of dθ: for every unit within the band |π_ij − θ_j| < ε/2, the
    /// kernel's terms with G_Z_ij = `gz(j)`.
    @inline(__always)
    static func thresholdGradient<T: BLASScalar>(
        dTheta: UnsafeMutablePointer<T>, pre: UnsafePointer<T>, theta: UnsafePointer<T>, bandwidth: T, l0Gradient: T, h: Int,
        gz: (Int) -> T
    ) {
        let half = bandwidth / 2
        for j in 0..<h where abs(pre[j] - theta[j]) < half {
            dTheta[j] += gz(j) * (-theta[j] / bandwidth) - l0Gradient / bandwidth
        }
    }
}
