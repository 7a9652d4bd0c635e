import CProcessControl

/// Under mpirun, the same step timed in one process as well: rank 0 alone with all of the
/// node's cores, on the whole dataset loaded again, while the other ranks sleep in a barrier
/// (as for `GEMMFloor`). One `mpirun -n P aetrain bench` run then shows both ratios, the P
/// ranks' step and one process's, against the same floor.
enum SingleProcessStep {
    /// Ms per step in one process on rank 0 (0 on the other ranks), or nil when the job is
    /// one process already (its step is the one just timed).
    static func measure(_ plan: BenchPlan, settings: TrainSettings, initial: ModelWeights?, threadsPerRank: Int,
                        comm: Communicator) throws -> Double? {
        guard comm.size > 1 else { return nil }
        try comm.idleBarrier()
        var failure: Error?
        var ms = 0.0
        if comm.isRoot {
            _ = aet_affinity_widen()  // mpirun binds each rank to one core
            defer { aet_affinity_restore() }
            BLASThreads.set(ProcessStatistics.cores)
            do {
                let alone = SingleProcess()
                let whole = try DatasetShard.load(plan.data, imageShape: nil, comm: alone)
                let trainer = try SparseAutoencoder(shard: whole, settings: settings, comm: alone, initial: initial,
                                                    options: StepOptions(kernels: plan.kernels, overlap: false))
                for _ in 0..<plan.warmup { _ = try trainer.evaluate(); try trainer.update() }
                ms = try BlockTiming.medianOfBlocks(total: plan.steps, comm: alone) { _ = try trainer.evaluate(); try trainer.update() }
            } catch { failure = error }
            BLASThreads.set(threadsPerRank)
        }
        // Ranks > 0 wait for the data, the warmup and the timed steps: 1 s each allowed.
        try comm.idleBarrier(allowing: 60 + Double(plan.steps + plan.warmup))
        try comm.collectively { if let failure { throw failure } }
        return ms
    }
}
