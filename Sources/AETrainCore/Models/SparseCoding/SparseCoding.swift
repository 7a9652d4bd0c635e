import Foundation

/// The sheet's Exercise 1: sparse coding, minimizing
///
///     J = (1/N) Σ_i ‖x_i − W s_i‖² + λ (1/N) Σ_i ‖s_i‖₁ + η ‖W‖_F²        W (d, h), s_i (h)
///
/// by alternating two exact or monotone steps:
/// - sources, per example on its own rank, W fixed: FISTA (gradient step on ‖x − W s‖², soft
///   thresholding for λ‖s‖₁), or the sheet's relaxed closed form s* = (WᵀW)⁻¹(Wᵀx − λq/2),
///   q = sign(s), as the end point of a line search; each example keeps its new code only if
///   its objective did not grow, so J never increases;
/// - dictionary, S fixed: W = Σ_XS (Σ_SS + ηI)⁻¹ with Σ_XS = (1/N) Σ x sᵀ and Σ_SS = (1/N) Σ s sᵀ,
///   the sums reduced across ranks, solved by Cholesky (LAPACK dposv).
/// Double precision throughout: the dictionary step solves a linear system.
public final class SparseCoding {
        public let d: Int, h: Int, n: Int, examples: Int
    public let lambda: Double, eta: Double
    let comm: Communicator
    /// This rank's examples (n, d).
    public let x: [Double]
    /// The dictionary (d, h), row-major: column j is atom j.
    public var W: [Double]
    /// This rank's codes (n, h).
    public var S: [Double]

    public init(shard: DatasetShard, hidden: Int, lambda: Double, eta: Double, seed: UInt64, comm: Communicator) throws {
        guard eta > 0 else { throw UserError("sparse coding needs ⟨eta⟩ > 0 (the dictionary step solves with Σ_SS + ηI)") }
        guard lambda >= 0, hidden > 0 else { throw UserError("sparse coding needs ⟨lambda⟩ ≥ 0 and ⟨hidden⟩ > 0") }
        let (dd, hh, nn) = (shard.d, hidden, shard.rows.count)
        d = dd; h = hh; n = nn; examples = shard.info.examples
        self.lambda = lambda; self.eta = eta; self.comm = comm
        x = (0..<(nn * dd)).map { Double(shard.values[$0]) }
        var rng = Xoshiro256(seed: seed)
        W = (0..<(dd * hh)).map { _ in rng.normal() / Double(dd).squareRoot() }
        S = .init(repeating: 0, count: nn * hh)
    }

    /// Test hook: a problem given directly (rank-local examples `x` (n, d)).
    public init(x: [Double], d: Int, h: Int, examples: Int, lambda: Double, eta: Double, W: [Double], comm: Communicator) {
        self.d = d; self.h = h; n = x.count / d; self.examples = examples
        self.lambda = lambda; self.eta = eta; self.comm = comm; self.x = x; self.W = W
        S = .init(repeating: 0, count: n * h)
    }

    // MARK: Objective

    /// (rec, spa, reg, J) over all ranks' examples.
    public func objective() throws -> (rec: Double, spa: Double, reg: Double, J: Double) {
        var sums = [0.0, 0.0]
        let residual = reconstruct()
        for i in 0..<(n * d) { sums[0] += residual[i] * residual[i] }
        for v in S { sums[1] += abs(v) }
        try comm.allreduceSum(&sums)
        let rec = sums[0] / Double(examples), spa = sums[1] / Double(examples)
        let reg = W.reduce(0) { $0 + $1 * $1 }
        return (rec, spa, reg, rec + lambda * spa + eta * reg)
    }

    /// X − S Wᵀ (n, d).
    func reconstruct() -> [Double] {
        var r = x
        guard n > 0 else { return r }
        Double.gemm(transA: false, transB: true, m: n, n: d, k: h, alpha: -1, a: S, lda: h, b: W, ldb: h, beta: 1, c: &r, ldc: d)
        return r
    }

    /// G = WᵀW (h, h) and B = X W (n, h): the codes' problem is ‖x‖² − 2 sᵀb + sᵀG s + λ‖s‖₁.
    func gram() -> (G: [Double], B: [Double]) {
        var G = [Double](repeating: 0, count: h * h), B = [Double](repeating: 0, count: n * h)
        Double.gemm(transA: true, transB: false, m: h, n: h, k: d, alpha: 1, a: W, lda: h, b: W, ldb: h, beta: 0, c: &G, ldc: h)
        if n > 0 { Double.gemm(transA: false, transB: false, m: n, n: h, k: d, alpha: 1, a: x, lda: d, b: W, ldb: h, beta: 0, c: &B, ldc: h) }
        return (G, B)
    }

    /// Per-example objective (without the constant ‖x‖²) of codes `codes` (n, h).
    func perExample(_ codes: [Double], G: [Double], B: [Double]) -> [Double] {
        guard n > 0 else { return [] }
        var SG = [Double](repeating: 0, count: n * h)
        Double.gemm(transA: false, transB: false, m: n, n: h, k: h, alpha: 1, a: codes, lda: h, b: G, ldb: h, beta: 0, c: &SG, ldc: h)
        return (0..<n).map { i in
            var f = 0.0
            for j in 0..<h {
                let s = codes[i * h + j]
                f += s * SG[i * h + j] - 2 * s * B[i * h + j] + lambda * abs(s)
            }
            return f
        }
    }

    /// Keeps, per example, the candidate codes only where they do not raise its objective.
    func keepBetter(_ candidate: [Double], G: [Double], B: [Double]) {
        let old = perExample(S, G: G, B: B), new = perExample(candidate, G: G, B: B)
        for i in 0..<n where new[i] <= old[i] {
            for j in 0..<h { S[i * h + j] = candidate[i * h + j] }
        }
    }

    // MARK: Sources

    /// FISTA from the current codes: `steps` accelerated proximal-gradient steps with step
    /// 1/L, L = 2 λ_max(WᵀW).
    public func updateSourcesFISTA(steps: Int) throws {
        let (G, B) = gram()
        var eig = G
        let L = 2 * max(try LAPACK.symmetricEigen(&eig, n: h).last ?? 1, 1e-12)
        let threshold = lambda / L
        var current = S, y = S, t = 1.0
        var YG = [Double](repeating: 0, count: n * h)
        for _ in 0..<steps where n > 0 {
            Double.gemm(transA: false, transB: false, m: n, n: h, k: h, alpha: 1, a: y, lda: h, b: G, ldb: h, beta: 0, c: &YG, ldc: h)
            let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
            let momentum = (t - 1) / tNext
            for i in 0..<(n * h) {
                let z = y[i] - (2 / L) * (YG[i] - B[i])
                let next = z > threshold ? z - threshold : (z < -threshold ? z + threshold : 0)
                y[i] = next + momentum * (next - current[i])
                current[i] = next
            }
            t = tNext
        }
        keepBetter(current, G: G, B: B)
    }

    /// The sheet's relaxed closed form s* = (WᵀW)⁻¹(Wᵀx − λq/2), q = sign(s), as the end point
    /// of a line search s + t(s* − s), t ∈ {1, 1/2, …, 1/1024}, the best t per example.
    public func updateSourcesRelaxed() throws {
        let (G, B) = gram()
        guard n > 0 else { return }
        var A = G
        for j in 0..<h { A[j * h + j] += 1e-9 * max(1, G[j * h + j]) }
        var target = (0..<(n * h)).map { i in B[i] - lambda * (S[i] > 0 ? 1 : (S[i] < 0 ? -1 : 0)) / 2 }
        try LAPACK.solvePositiveDefinite(&A, n: h, &target, rhs: n)  // row i of `target` is now s*_i
        var scale = 1.0
        for _ in 0...10 {
            let candidate = (0..<(n * h)).map { S[$0] + scale * (target[$0] - S[$0]) }
            keepBetter(candidate, G: G, B: B)
            scale /= 2
        }
    }

    // MARK: Dictionary

    /// W = Σ_XS (Σ_SS + ηI)⁻¹, with both sums reduced across ranks.
    public func updateDictionary() throws {
        var sums = [Double](repeating: 0, count: d * h + h * h)
        if n > 0 {
            sums.withUnsafeMutableBufferPointer { buf in
                guard let base = buf.baseAddress else { return }
                Double.gemm(transA: true, transB: false, m: d, n: h, k: n, alpha: 1, a: x, lda: d, b: S, ldb: h, beta: 0, c: base, ldc: h)
                Double.gemm(transA: true, transB: false, m: h, n: h, k: n, alpha: 1, a: S, lda: h, b: S, ldb: h, beta: 0, c: base + d * h, ldc: h)
            }
        }
        try comm.allreduceSum(&sums)
        let inv = 1 / Double(examples)
        var sxs = sums[0..<(d * h)].map { $0 * inv }              // (d, h) row-major = Σ_XSᵀ column-major (h, d)
        var a = sums[(d * h)...].map { $0 * inv }                  // Σ_SS (h, h)
        for j in 0..<h { a[j * h + j] += eta }
        try LAPACK.solvePositiveDefinite(&a, n: h, &sxs, rhs: d)  // (Σ_SS + ηI) Wᵀ = Σ_XSᵀ
        W = sxs
    }

    /// ∂J/∂W = (2/N) Σ (W s − x) sᵀ + 2ηW, reduced across ranks (for tests).
    public func dictionaryGradient() throws -> [Double] {
        var g = [Double](repeating: 0, count: d * h)
        let r = reconstruct()  // X − S Wᵀ
        if n > 0 {
            Double.gemm(transA: true, transB: false, m: d, n: h, k: n, alpha: -2 / Double(examples), a: r, lda: d, b: S, ldb: h, beta: 0, c: &g, ldc: h)
        }
        try comm.allreduceSum(&g)
        for i in 0..<(d * h) { g[i] += 2 * eta * W[i] }
        return g
    }
}
