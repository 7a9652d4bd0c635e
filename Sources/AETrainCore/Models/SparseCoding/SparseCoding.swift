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
///
/// Shapes: n examples on this rank (N in all), d inputs, h atoms. Every matrix is a view of
/// one arena sized at init; an alternation allocates only the few scalars it reduces.
public final class SparseCoding {
    public let d: Int, h: Int, n: Int, examples: Int
    public let lambda: Double, eta: Double
    let comm: Communicator

    private let scratch: Arena
    /// This rank's examples (n, d).
    public let x: UnsafeMutablePointer<Double>
    /// The dictionary (d, h), row-major: column j is atom j.
    public let W: UnsafeMutablePointer<Double>
    /// This rank's codes (n, h).
    public let S: UnsafeMutablePointer<Double>
    private let G: UnsafeMutablePointer<Double>          // (h, h) WᵀW
    private let B: UnsafeMutablePointer<Double>          // (n, h) X W
    private let residual: UnsafeMutablePointer<Double>   // (n, d) X − S Wᵀ
    private let codeProduct: UnsafeMutablePointer<Double> // (n, h) S G, or Y G in FISTA
    private let current: UnsafeMutablePointer<Double>    // (n, h) FISTA's iterate, or the line search's candidate
    private let momentum: UnsafeMutablePointer<Double>   // (n, h) FISTA's extrapolated point y
    private let target: UnsafeMutablePointer<Double>     // (n, h) the relaxed closed form s*
    private let oldObjective: UnsafeMutablePointer<Double> // (n)
    private let newObjective: UnsafeMutablePointer<Double> // (n)
    private let sums: UnsafeMutablePointer<Double>       // (d·h + h·h) Σ_XS and Σ_SS, reduced
    private let system: UnsafeMutablePointer<Double>     // (h, h) the matrix solved (eigenvectors, Cholesky)
    private let eigenvalues: UnsafeMutablePointer<Double> // (h)
    private let eigenWork: UnsafeMutablePointer<Double>  // (eigenWorkCount) dsyev's workspace
    private let eigenWorkCount: Int

    public convenience init(shard: DatasetShard, hidden: Int, lambda: Double, eta: Double, seed: UInt64, comm: Communicator) throws {
        guard eta > 0 else { throw UserError("sparse coding needs ⟨eta⟩ > 0 (the dictionary step solves with Σ_SS + ηI)") }
        guard lambda >= 0, hidden > 0 else { throw UserError("sparse coding needs ⟨lambda⟩ ≥ 0 and ⟨hidden⟩ > 0") }
        let (d, h, n) = (shard.d, hidden, shard.rows.count)
        _ = try ModelShape(checkingD: d, h: h)
        _ = try Sizes.product([8, shard.info.examples, h], naming: "sparse coding's codes for \(shard.info.examples) examples and ⟨hidden⟩ \(h)")
        _ = try Sizes.product([8, 4, h, h], naming: "sparse coding's h×h systems for ⟨hidden⟩ \(h)")
        var need = MemoryEstimate()
        need.add(bytes: shard.bytes)
        need.add(Double.self, 2, n, d); need.add(Double.self, 6, n, h)   // x, residual; the n×h buffers
        need.add(Double.self, 2, d, h); need.add(Double.self, 4, h, h)   // W, Σ_XS; the h×h systems (and dsyev's query)
        if comm.isRoot { need.add(Double.self, 2, shard.info.examples, h) }  // a checkpoint's codes, gathered
        try MemoryBudget.check(need, for: "sparse coding with h = \(h) on \(n) examples of d = \(d) pixels (its n×h and h×h buffers and this rank's data)", comm: comm)
        _ = try Sizes.count([d + h, h], naming: "⟨hidden⟩ \(h) with d = \(d) pixels (the reduced Σ_XS and Σ_SS)")
        _ = try Sizes.count([n, max(d, h)], naming: "sparse coding's \(n) examples on this rank with h = \(h) and d = \(d)")
        self.init(d: shard.d, h: hidden, n: shard.rows.count, examples: shard.info.examples, lambda: lambda, eta: eta, comm: comm)
        for i in 0..<(n * d) { x[i] = Double(shard.values[i]) }
        var rng = Xoshiro256(seed: seed)
        for i in 0..<(d * h) { W[i] = rng.normal() / Double(d).squareRoot() }
    }

    /// Test hook: a problem given directly (rank-local examples `x` (n, d), dictionary `W` (d, h)).
    public convenience init(x: [Double], d: Int, h: Int, examples: Int, lambda: Double, eta: Double, W: [Double], comm: Communicator) {
        self.init(d: d, h: h, n: x.count / d, examples: examples, lambda: lambda, eta: eta, comm: comm)
        for (i, v) in x.enumerated() { self.x[i] = v }
        for (i, v) in W.enumerated() { self.W[i] = v }
    }

    private init(d: Int, h: Int, n: Int, examples: Int, lambda: Double, eta: Double, comm: Communicator) {
        self.d = d; self.h = h; self.n = n; self.examples = examples
        self.lambda = lambda; self.eta = eta; self.comm = comm
        eigenWorkCount = LAPACK.eigenWorkspace(n: h)
        let counts = [n * d, d * h, n * h, h * h, n * h, n * d, n * h, n * h, n * h, n * h, n, n, d * h + h * h, h * h, h, eigenWorkCount]
        var size = Arena.Size()
        for c in counts { size.add(Double.self, c) }
        scratch = Arena(size)
        x = scratch.take(Double.self, n * d); W = scratch.take(Double.self, d * h); S = scratch.take(Double.self, n * h)
        G = scratch.take(Double.self, h * h); B = scratch.take(Double.self, n * h); residual = scratch.take(Double.self, n * d)
        codeProduct = scratch.take(Double.self, n * h); current = scratch.take(Double.self, n * h)
        momentum = scratch.take(Double.self, n * h); target = scratch.take(Double.self, n * h)
        oldObjective = scratch.take(Double.self, n); newObjective = scratch.take(Double.self, n)
        sums = scratch.take(Double.self, d * h + h * h); system = scratch.take(Double.self, h * h)
        eigenvalues = scratch.take(Double.self, h); eigenWork = scratch.take(Double.self, eigenWorkCount)
    }

    /// W (d, h) and this rank's S (n, h), as arrays (checkpoints, outputs).
    public var dictionary: [Double] { Array(UnsafeBufferPointer(start: W, count: d * h)) }
    public var codes: [Double] { Array(UnsafeBufferPointer(start: S, count: n * h)) }
    /// FNV-1a over W's bit patterns: equal on every rank when the ranks agree.
    public func checksum() -> UInt64 { FNV1a.hash(UnsafeRawBufferPointer(start: W, count: d * h * MemoryLayout<Double>.stride)) }

    // MARK: Objective

    /// (rec, spa, reg, J) over all ranks' examples.
    public func objective() throws -> (rec: Double, spa: Double, reg: Double, J: Double) {
        var partial = localSums()
        try comm.allreduceSum(&partial)
        let rec = partial[0] / Double(examples), spa = partial[1] / Double(examples)
        let reg = squaredNorm(W, count: d * h)
        return (rec, spa, reg, rec + lambda * spa + eta * reg)
    }

    /// This rank's Σ‖x_i − W s_i‖² and Σ‖s_i‖₁.
    func localSums() -> [Double] {
        reconstruct()
        var sse = 0.0, l1 = 0.0
        for i in 0..<(n * d) { sse += residual[i] * residual[i] }
        for i in 0..<(n * h) { l1 += abs(S[i]) }
        return [sse, l1]
    }

    /// Active codes on this rank (S_ij ≠ 0).
    func localNonzeroCount() -> Int {
        var count = 0
        for i in 0..<(n * h) where S[i] != 0 { count += 1 }
        return count
    }

    func squaredNorm(_ v: UnsafePointer<Double>, count: Int) -> Double {
        var sum = 0.0
        for i in 0..<count { sum += v[i] * v[i] }
        return sum
    }

    /// residual ← X − S Wᵀ (n, d).
    func reconstruct() {
        residual.update(from: x, count: n * d)
        guard n > 0 else { return }
        Double.gemm(transA: false, transB: true, m: n, n: d, k: h, alpha: -1, a: S, lda: h, b: W, ldb: h, beta: 1, c: residual, ldc: d)
    }

    /// G = WᵀW (h, h) and B = X W (n, h): the codes' problem is ‖x‖² − 2 sᵀb + sᵀG s + λ‖s‖₁.
    func gram() {
        Double.gemm(transA: true, transB: false, m: h, n: h, k: d, alpha: 1, a: W, lda: h, b: W, ldb: h, beta: 0, c: G, ldc: h)
        if n > 0 { Double.gemm(transA: false, transB: false, m: n, n: h, k: d, alpha: 1, a: x, lda: d, b: W, ldb: h, beta: 0, c: B, ldc: h) }
    }

    /// Per-example objective (without the constant ‖x‖²) of `codes` (n, h), into `out` (n).
    func perExample(_ codes: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        guard n > 0 else { return }
        Double.gemm(transA: false, transB: false, m: n, n: h, k: h, alpha: 1, a: codes, lda: h, b: G, ldb: h, beta: 0, c: codeProduct, ldc: h)
        for i in 0..<n {
            var f = 0.0
            for j in 0..<h {
                let s = codes[i * h + j]
                f += s * codeProduct[i * h + j] - 2 * s * B[i * h + j] + lambda * abs(s)
            }
            out[i] = f
        }
    }

    /// Keeps, per example, the candidate codes (n, h) only where they do not raise its objective.
    func keepBetter(_ candidate: UnsafePointer<Double>) {
        perExample(S, into: oldObjective)
        perExample(candidate, into: newObjective)
        for i in 0..<n where newObjective[i] <= oldObjective[i] {
            (S + i * h).update(from: candidate + i * h, count: h)
        }
    }

    // MARK: Sources

    /// FISTA steps between two calls of `updateSourcesFISTA`'s `stopRequested`.
    public static let stopCheckInterval = 20

    /// FISTA from the current codes: `steps` accelerated proximal-gradient steps with step
    /// 1/L, L = 2 λ_max(WᵀW).
    ///
    /// `stopRequested` (collective: every rank calls it after the same steps) is asked every
    /// `stopCheckInterval` steps; when it says yes, the update is abandoned and the codes stay
    /// as they were. Returns false then.
    @discardableResult
    public func updateSourcesFISTA(steps: Int, stopRequested: (() throws -> Bool)? = nil) throws -> Bool {
        gram()
        system.update(from: G, count: h * h)
        try LAPACK.symmetricEigen(system, n: h, eigenvalues: eigenvalues, work: eigenWork, count: eigenWorkCount)
        let L = 2 * max(h > 0 ? eigenvalues[h - 1] : 1, 1e-12)  // ascending: the last is the largest
        let threshold = lambda / L
        current.update(from: S, count: n * h)
        momentum.update(from: S, count: n * h)
        var t = 1.0
        for step in 0..<steps {
            if let stopRequested, step % Self.stopCheckInterval == Self.stopCheckInterval - 1, try stopRequested() { return false }
            guard n > 0 else { continue }
            Double.gemm(transA: false, transB: false, m: n, n: h, k: h, alpha: 1, a: momentum, lda: h, b: G, ldb: h, beta: 0, c: codeProduct, ldc: h)
            let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
            let m = (t - 1) / tNext
            for i in 0..<(n * h) {
                let z = momentum[i] - (2 / L) * (codeProduct[i] - B[i])
                let next = z > threshold ? z - threshold : (z < -threshold ? z + threshold : 0)
                momentum[i] = next + m * (next - current[i])
                current[i] = next
            }
            t = tNext
        }
        keepBetter(current)
        return true
    }

    /// The sheet's relaxed closed form s* = (WᵀW)⁻¹(Wᵀx − λq/2), q = sign(s), as the end point
    /// of a line search s + t(s* − s), t ∈ {1, 1/2, …, 1/1024}, the best t per example.
    public func updateSourcesRelaxed() throws {
        gram()
        guard n > 0 else { return }
        system.update(from: G, count: h * h)
        for j in 0..<h { system[j * h + j] += 1e-9 * max(1, G[j * h + j]) }
        for i in 0..<(n * h) { target[i] = B[i] - lambda * (S[i] > 0 ? 1 : (S[i] < 0 ? -1 : 0)) / 2 }
        try LAPACK.solvePositiveDefinite(system, n: h, target, rhs: n)  // row i of `target` is now s*_i
        var scale = 1.0
        for _ in 0...10 {
            for i in 0..<(n * h) { current[i] = S[i] + scale * (target[i] - S[i]) }
            keepBetter(current)
            scale /= 2
        }
    }

    // MARK: Dictionary

    /// W = Σ_XS (Σ_SS + ηI)⁻¹, with both sums reduced across ranks.
    public func updateDictionary() throws {
        let dh = d * h
        sums.update(repeating: 0, count: dh + h * h)
        if n > 0 {
            Double.gemm(transA: true, transB: false, m: d, n: h, k: n, alpha: 1, a: x, lda: d, b: S, ldb: h, beta: 0, c: sums, ldc: h)
            Double.gemm(transA: true, transB: false, m: h, n: h, k: n, alpha: 1, a: S, lda: h, b: S, ldb: h, beta: 0, c: sums + dh, ldc: h)
        }
        try comm.allreduceSum(sums, count: dh + h * h)
        let inv = 1 / Double(examples)
        for i in 0..<(dh + h * h) { sums[i] *= inv }   // (d, h) row-major = Σ_XSᵀ column-major (h, d); then Σ_SS (h, h)
        for j in 0..<h { sums[dh + j * h + j] += eta }
        try LAPACK.solvePositiveDefinite(sums + dh, n: h, sums, rhs: d)  // (Σ_SS + ηI) Wᵀ = Σ_XSᵀ
        W.update(from: sums, count: dh)
    }

    /// ∂J/∂W = (2/N) Σ (W s − x) sᵀ + 2ηW, reduced across ranks (for tests).
    public func dictionaryGradient() throws -> [Double] {
        var g = [Double](repeating: 0, count: d * h)
        reconstruct()  // X − S Wᵀ
        if n > 0 {
            Double.gemm(transA: true, transB: false, m: d, n: h, k: n, alpha: -2 / Double(examples), a: residual, lda: d, b: S, ldb: h,
                        beta: 0, c: &g, ldc: h)
        }
        try comm.allreduceSum(&g)
        for i in 0..<(d * h) { g[i] += 2 * eta * W[i] }
        return g
    }
}
