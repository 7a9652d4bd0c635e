import Foundation

/// Principal components of the (standardized, hence centred) data from the covariance
/// S = (1/N) Σ_i x_i x_iᵀ, whose per-rank partial sums are reduced across ranks, then
/// eigen-decomposed with LAPACK — the sheet's Exercise 2 says a tied linear autoencoder
/// finds this subspace.
public struct PrincipalComponents {
    /// All d eigenvalues of S, largest first.
    public var eigenvalues: [Double]
    /// The first k eigenvectors, unit length, largest eigenvalue first: (k, d).
    public var components: [[Double]]

    /// trace(S): the total variance.
    public var totalVariance: Double { eigenvalues.reduce(0, +) }
    public func explainedRatio(_ i: Int) -> Double { eigenvalues[i] / totalVariance }

    public static func covariance(_ shard: DatasetShard, comm: Communicator) throws -> [Double] {
        let d = shard.d, n = shard.rows.count
        var c = [Double](repeating: 0, count: try Sizes.product([d, d], naming: "the covariance of d = \(d) pixels"))
        let chunk = 256
        var rows = [Double](repeating: 0, count: chunk * d)
        var start = 0
        while start < n {
            let count = min(chunk, n - start)
            for i in 0..<(count * d) { rows[i] = Double(shard.values[start * d + i]) }
            rows.withUnsafeBufferPointer { r in
                c.withUnsafeMutableBufferPointer { cb in
                    guard let rp = r.baseAddress, let cp = cb.baseAddress else { return }
                    Double.gemm(transA: true, transB: false, m: d, n: d, k: count, alpha: 1, a: rp, lda: d, b: rp, ldb: d, beta: 1, c: cp, ldc: d)
                }
            }
            start += count
        }
        try comm.allreduceSum(&c)
        let scale = 1 / Double(shard.info.examples)
        return c.map { $0 * scale }
    }

    public static func compute(_ shard: DatasetShard, components k: Int, comm: Communicator) throws -> PrincipalComponents {
        let d = shard.d
        guard k >= 1, k <= d else { throw UserError("⟨hidden⟩ must be between 1 and d = \(d), got \(k)") }
        var c = try covariance(shard, comm: comm)
        let ascending = try LAPACK.symmetricEigen(&c, n: d)
        let vectors = (0..<k).map { j -> [Double] in
            let column = d - 1 - j  // eigenvector of the j-th largest eigenvalue
            return Array(c[(column * d)..<((column + 1) * d)])
        }
        return PrincipalComponents(eigenvalues: ascending.reversed().map { max(0, $0) }, components: vectors)
    }

    /// For each learned direction (columns of `W`, row-major (d, k)), the cosine of its angle
    /// to the span of the first k principal components: ‖U_kᵀ w‖ / ‖w‖.
    public func subspaceCosines(_ W: [Float], d: Int, k: Int) -> [Double] {
        (0..<k).map { j in
            let w = (0..<d).map { Double(W[$0 * k + j]) }
            let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { return 0 }
            var inside = 0.0
            for u in components.prefix(k) {
                let p = zip(u, w).reduce(0) { $0 + $1.0 * $1.1 }
                inside += p * p
            }
            return inside.squareRoot() / norm
        }
    }
}
