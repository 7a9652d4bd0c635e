/// Step time on the dense and on the sparse kernels at set activation densities: the bias of
/// each unit is set to the (1 − f) quantile of its pre-activation over a sample of the data,
/// so that a fraction f of the activations is nonzero, spread over all units as in a trained
/// sparse model.
public enum SparsityBenchmark {
    public static func run(_ plan: BenchPlan, densities: [Double], shard: DatasetShard, threadsPerRank: Int,
                           comm: Communicator) throws -> SparsityReport? {
        let h = plan.hidden
        let overlap = try plan.overlap.resolve(comm)
        var rows: [SparsityReport.Row] = []
        for f in densities {
            var ms: [KernelChoice: Double] = [:]
            var measured = 0.0
            for path in [KernelChoice.dense, .sparse] {
                var settings = plan.settings(batch: plan.batchSize, hidden: h)
                // Adam moves every weight by about the learning rate per step whatever the
                // gradient; a tiny rate keeps the density where it was set. Same cost per step.
                settings.adam.learningRate = 1e-8
                let trainer = try comm.collectively {
                    try SparseAutoencoder(shard: shard, settings: settings, comm: comm,
                                          options: StepOptions(kernels: path, overlap: overlap))
                }
                // Each rank draws its own bias, then takes rank 0's: the store must be the
                // rank's own (the options above never ask for shared memory).
                precondition(trainer.store.sharing == nil)
                setBias(trainer.store, shard: shard, density: f)
                try comm.broadcast(trainer.store.b, bytes: h * MemoryLayout<Float>.stride, root: 0)  // rank 0's sample
                for _ in 0..<plan.warmup { _ = try trainer.evaluate(); try trainer.update() }
                var l0 = 0.0, n = 0
                ms[path] = try BlockTiming.medianOfBlocks(total: plan.steps, comm: comm) {
                    l0 += try trainer.evaluate().l0
                    n += 1
                    try trainer.update()
                }
                measured = l0 / Double(max(1, n)) / Double(h)
            }
            rows.append(SparsityReport.Row(density: f, measuredDensity: measured, denseMs: ms[.dense] ?? .nan, sparseMs: ms[.sparse] ?? .nan))
        }
        let floorMs = try GEMMFloor.measure(rows: plan.batchSize, d: shard.d, h: h, steps: plan.steps, warmup: plan.warmup,
                                            threadsPerRank: threadsPerRank, comm: comm)
        guard comm.isRoot else { return nil }
        return SparsityReport(ranks: comm.size, threadsPerRank: threadsPerRank, cores: ProcessStatistics.cores,
                              batchSize: plan.batchSize, hidden: h, d: shard.d, stepsPerBlock: plan.stepsPerBlock,
                              floorMs: floorMs, rows: rows)
    }

    /// Sets b_j so that c = round(density · n) of the n = min(1000, local) first local rows fire
    /// in unit j: minus the midpoint between the c-th and (c + 1)-th largest (X V)_ij, so that no
    /// row sits at the threshold itself (where rounding would decide).
    static func setBias(_ store: ParameterStore<Float>, shard: DatasetShard, density: Double) {
        let d = shard.d, h = store.layout.shape.h
        let n = min(1000, shard.rows.count)
        guard n > 0 else { return }
        var p = [Float](repeating: 0, count: n * h)  // P = X V, (n, h)
        shard.withRows(shard.rows.lowerBound..<shard.rows.lowerBound + n) { x in  // this rank's first n rows, (n, d)
            p.withUnsafeMutableBufferPointer {
                guard let pp = $0.baseAddress else { return }  // n · h > 0 elements
                Float.gemm(transA: false, transB: false, m: n, n: h, k: d, alpha: 1, a: x, lda: d, b: store.V, ldb: h, beta: 0, c: pp, ldc: h)
            }
        }
        let c = min(n, max(0, Int((density * Double(n)).rounded())))
        for j in 0..<h {
            let column = (0..<n).map { p[$0 * h + j] }.sorted()  // ascending: rows n − c … n − 1 fire
            let threshold: Float = if c == 0 { column[n - 1] + 1 } else if c == n { column[0] - 1 }
                                   else { (column[n - 1 - c] + column[n - c]) / 2 }
            store.b[j] = -threshold
        }
    }
}
