#if canImport(Glibc)
import Glibc
#endif

/// Adam's settings; defaults are PyTorch's `torch.optim.Adam` with the sheet's learning rate.
public struct AdamSettings: Equatable, Codable, Sendable {
    public var learningRate: Double = 1e-4
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public init() {}
}

public enum Adam {
    /// One Adam step over all of `store`'s parameters with its gradient; Adam's t is one more.
    public static func step<T: BLASScalar>(_ store: ParameterStore<T>, settings: AdamSettings) {
        store.adamSteps += 1
        step(params: store.params, moment1: store.moment1, moment2: store.moment2, grads: store.grads,
             count: store.layout.count, t: store.adamSteps, settings: settings)
    }

    /// One Adam step over the flat buffers, exactly as PyTorch applies it (no weight decay,
    /// no amsgrad), step t starting at 1:
    ///
    ///     m ← β1 m + (1 − β1) g
    ///     v ← β2 v + (1 − β2) g²
    ///     p ← p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)
    ///
    /// - params, moment1, moment2: (count), updated in place. - grads: (count).
    public static func step<T: BLASScalar>(
        params: UnsafeMutablePointer<T>, moment1: UnsafeMutablePointer<T>,
        moment2: UnsafeMutablePointer<T>, grads: UnsafePointer<T>,
        count: Int, t: Int, settings s: AdamSettings
    ) {
        let c = Coefficients<T>(t: t, settings: s)
        // The loop itself is C (CKernels/adam.c): Swift does not vectorize sqrt and division.
        T.adamKernel(params, moment1, moment2, grads, count, c.b1, c.b2, c.stepSize, c.invSqrtBC2, c.eps)
    }

    /// What the C loops take for step t: β1, β2, the bias-corrected step size and 1/sqrt(1 − β2ᵗ)
    /// (in double, as PyTorch computes them on the host), eps.
    struct Coefficients<T: BLASScalar> {
        let b1, b2, stepSize, invSqrtBC2, eps: T
        init(t: Int, settings s: AdamSettings) {
            b1 = T(s.beta1); b2 = T(s.beta2)
            stepSize = T(s.learningRate / (1 - pow(s.beta1, Double(t))))
            invSqrtBC2 = T(1 / (1 - pow(s.beta2, Double(t))).squareRoot())
            eps = T(s.epsilon)
        }
    }

    /// `step` with g = the sum of `rows` gradients `stride` apart (in row order) and, if
    /// `twoEta` is given, 2η·p added by FMA before the update, in one pass: the shared-memory
    /// step's sum, regularizer gradient and update (`SharedMemoryReduction.update`).
    public static func step<T: BLASScalar>(
        params: UnsafeMutablePointer<T>, moment1: UnsafeMutablePointer<T>,
        moment2: UnsafeMutablePointer<T>, summing grads: UnsafePointer<T>, stride: Int, rows: Int, twoEta: T?,
        count: Int, t: Int, settings s: AdamSettings
    ) {
        let c = Coefficients<T>(t: t, settings: s)
        T.adamSumKernel(params, moment1, moment2, grads, stride: stride, rows: rows, count, twoEta: twoEta,
                        c.b1, c.b2, c.stepSize, c.invSqrtBC2, c.eps)
    }
}

