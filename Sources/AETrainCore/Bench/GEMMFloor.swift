import CProcessControl

/// The training step's five matrix products with its shapes, on random data: the floor a
/// step cannot beat with the same BLAS.
///
/// Shapes (m = rows of the batch): X (m, d), V (d, h), Z (m, h), W (h, d), G (m, d),
/// G_Z (m, h), dV (d, h), dW (h, d).
public final class GEMMFloor {
    public let rows: Int, d: Int, h: Int
    /// Holds the eight buffers below, in the order of `init`; they live as long as it does.
    private let arena: Arena
    private let x, v, z, w, g, gz, dV, dW: UnsafeMutablePointer<Float>

    public init(rows: Int, d: Int, h: Int) {
        self.rows = rows; self.d = d; self.h = h
        let counts = [rows * d, d * h, rows * h, h * d, rows * d, rows * h, d * h, h * d]  // x, v, z, w, g, gz, dV, dW
        var size = Arena.Size()
        for n in counts { size.add(Float.self, n) }
        let arena = Arena(size)
        let buffers = counts.map { n in
            let b = arena.take(Float.self, n)
            var rng = Xoshiro256(seed: UInt64(n))
            for i in 0..<n { b[i] = Float(rng.normal()) * 0.1 }
            return b
        }
        self.arena = arena
        (x, v, z, w) = (buffers[0], buffers[1], buffers[2], buffers[3])
        (g, gz, dV, dW) = (buffers[4], buffers[5], buffers[6], buffers[7])
    }

    /// The five products once.
    public func run() {
        let m = rows
        Float.gemm(transA: false, transB: false, m: m, n: h, k: d, alpha: 1, a: x, lda: d, b: v, ldb: h, beta: 0, c: z, ldc: h)   // P = X V
        Float.gemm(transA: false, transB: false, m: m, n: d, k: h, alpha: 1, a: z, lda: h, b: w, ldb: d, beta: 0, c: g, ldc: d)   // X̂ = Z W
        Float.gemm(transA: true, transB: false, m: h, n: d, k: m, alpha: 1, a: z, lda: h, b: g, ldb: d, beta: 0, c: dW, ldc: d)   // dW = Zᵀ G
        Float.gemm(transA: false, transB: true, m: m, n: h, k: d, alpha: 1, a: g, lda: d, b: w, ldb: d, beta: 0, c: gz, ldc: h)   // G_Z = G Wᵀ
        Float.gemm(transA: true, transB: false, m: d, n: h, k: m, alpha: 1, a: x, lda: d, b: gz, ldb: h, beta: 0, c: dV, ldc: h)  // dV = Xᵀ G_P
    }

    /// Ms per run of the five products for the whole batch, on rank 0 with all of the node's
    /// cores while the other ranks sleep in a barrier (0 on those). `warmup / 3` untimed runs
    /// (at least 3), then `steps` timed ones in blocks; this rank's BLAS thread count is
    /// `threadsPerRank` again afterwards.
    public static func measure(rows: Int, d: Int, h: Int, steps: Int, warmup: Int, threadsPerRank: Int,
                               comm: Communicator) throws -> Double {
        try comm.idleBarrier()
        var ms = 0.0
        if comm.isRoot {
            _ = aet_affinity_widen()  // mpirun binds each rank to one core
            defer { aet_affinity_restore() }
            BLASThreads.set(ProcessStatistics.cores)
            let floor = GEMMFloor(rows: rows, d: d, h: h)
            for _ in 0..<max(3, warmup / 3) { floor.run() }
            ms = try BlockTiming.medianOfBlocks(total: steps, comm: SingleProcess()) { floor.run() }
            BLASThreads.set(threadsPerRank)
        }
        try comm.idleBarrier(allowing: Double(steps + warmup))  // ranks > 0 wait for the floor's runs: 1 s each allowed
        return ms
    }
}
