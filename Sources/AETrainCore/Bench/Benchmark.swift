import Foundation

/// Runs a `BenchPlan` on every rank; rank 0 gets the report. `aetrain bench` is this call
/// and the printing of `text()` or `json()`.
public enum Benchmark {
    /// The plan's benchmark on this rank; the report on rank 0, nil elsewhere. Sets this
    /// rank's BLAS threads and flushes denormals, as training does.
    public static func run(_ plan: BenchPlan, comm: Communicator) throws -> BenchReport? {
        if case .allreduce = plan.kind { return try AllreduceBenchmark.run(comm: comm) }
        let threadsPerRank = plan.threads ?? Cores.perRank(comm)
        BLASThreads.set(threadsPerRank)
        Denormals.flushToZero()
        let shard = try DatasetShard.load(plan.data, imageShape: nil, comm: comm)
        switch plan.kind {
        case .sparsity(let densities):
            return try SparsityBenchmark.run(plan, densities: densities, shard: shard, threadsPerRank: threadsPerRank, comm: comm)
        case .step, .allreduce:  // .allreduce returned above
            let initial = try plan.initDirectory.map { dir in
                try comm.collectively { try ModelWeights.load(from: URL(fileURLWithPath: dir)) }
            }
            return try StepBenchmark.run(plan, shard: shard, initial: initial, threadsPerRank: threadsPerRank, comm: comm)
        }
    }
}
