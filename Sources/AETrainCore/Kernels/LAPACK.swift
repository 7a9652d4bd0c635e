import COpenBLAS

/// The two LAPACK routines the sheet's other models need, in double precision.
public enum LAPACK {
    /// Eigen-decomposition of a symmetric n×n matrix `a` (row-major = column-major for a
    /// symmetric matrix). Returns the eigenvalues in ascending order; `a` is overwritten with
    /// the eigenvectors, eigenvector j in column j (column-major), i.e. row j of the row-major
    /// buffer read as (n, n).
    public static func symmetricEigen(_ a: inout [Double], n: Int) throws -> [Double] {
        precondition(a.count == n * n)
        var w = [Double](repeating: 0, count: n)
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0, lwork: Int32 = -1
        var query = [0.0]
        let jobz: CChar = 86 /* V */, uplo: CChar = 85 /* U */
        var j = jobz, u = uplo
        dsyev_(&j, &u, &nn, &a, &lda, &w, &query, &lwork, &info)
        lwork = Int32(max(1, Int(query[0])))
        var work = [Double](repeating: 0, count: Int(lwork))
        dsyev_(&j, &u, &nn, &a, &lda, &w, &work, &lwork, &info)
        guard info == 0 else { throw UserError("the eigen-decomposition did not converge (LAPACK dsyev info \(info))") }
        return w
    }

    /// Solves A X = B for symmetric positive-definite A (n×n) by Cholesky; B holds `rhs`
    /// right-hand sides as columns (column-major n×rhs, i.e. row-major rhs×n: one per row).
    public static func solvePositiveDefinite(_ a: inout [Double], n: Int, _ b: inout [Double], rhs: Int) throws {
        precondition(a.count == n * n && b.count == n * rhs)
        var nn = Int32(n), nrhs = Int32(rhs), lda = Int32(n), ldb = Int32(n), info: Int32 = 0
        var u: CChar = 85
        dposv_(&u, &nn, &nrhs, &a, &lda, &b, &ldb, &info)
        guard info == 0 else { throw UserError("the matrix is not positive definite (LAPACK dposv info \(info)); increase ⟨eta⟩") }
    }

    // MARK: In place, on buffers sized once (the models' arenas)

    /// The workspace (in doubles) `symmetricEigen(_:n:eigenvalues:work:count:)` needs for n×n.
    public static func eigenWorkspace(n: Int) -> Int {
        var a = [Double](repeating: 0, count: max(1, n * n)), w = [Double](repeating: 0, count: max(1, n)), query = [0.0]
        var nn = Int32(n), lda = Int32(max(1, n)), info: Int32 = 0, lwork: Int32 = -1
        var j: CChar = 86, u: CChar = 85
        dsyev_(&j, &u, &nn, &a, &lda, &w, &query, &lwork, &info)
        return max(1, Int(query[0]))
    }

    /// `symmetricEigen(_:n:)` into given buffers: a (n, n), eigenvalues (n), work (count).
    public static func symmetricEigen(_ a: UnsafeMutablePointer<Double>, n: Int, eigenvalues w: UnsafeMutablePointer<Double>,
                                      work: UnsafeMutablePointer<Double>, count: Int) throws {
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0, lwork = Int32(count)
        var j: CChar = 86, u: CChar = 85
        dsyev_(&j, &u, &nn, a, &lda, w, work, &lwork, &info)
        guard info == 0 else { throw UserError("the eigen-decomposition did not converge (LAPACK dsyev info \(info))") }
    }

    /// `solvePositiveDefinite(_:n:_:rhs:)` on buffers: a (n, n), b (rhs, n).
    public static func solvePositiveDefinite(_ a: UnsafeMutablePointer<Double>, n: Int, _ b: UnsafeMutablePointer<Double>, rhs: Int) throws {
        var nn = Int32(n), nrhs = Int32(rhs), lda = Int32(n), ldb = Int32(n), info: Int32 = 0
        var u: CChar = 85
        dposv_(&u, &nn, &nrhs, a, &lda, b, &ldb, &info)
        guard info == 0 else { throw UserError("the matrix is not positive definite (LAPACK dposv info \(info)); increase ⟨eta⟩") }
    }
}
