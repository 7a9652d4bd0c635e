import Dispatch
import Foundation

/// The training step against the GEMM floor, at the plan's shape or at each of the sweep's.
///
/// The step is timed through the trainer's own code path (`SparseAutoencoder.evaluate()` then
/// `update()`), after `warmup` untimed steps, as the median of 10 blocks (`BlockTiming`); the
/// floor is `GEMMFloor` at the same shape. The first model's first step also gives the
/// seconds from process start to a first step.
public enum StepBenchmark {
    /// Every rank times; the report on rank 0, nil elsewhere. `initial`: trained weights
    /// (their h replaces the plan's).
    public static func run(_ plan: BenchPlan, shard: DatasetShard, initial: ModelWeights?, threadsPerRank: Int,
                           comm: Communicator) throws -> StepReport? {
        let options = StepOptions(kernels: plan.kernels, overlap: !plan.deterministic && plan.overlap.enabled(comm),
                                  deterministic: plan.deterministic, threads: threadsPerRank)
        var shapes: [StepReport.Shape] = []
        var startup = 0.0
        for (batch, h) in plan.stepShapes(initialHidden: initial?.shape.h) {
            let settings = plan.settings(batch: batch, hidden: h)
            let trainer = try comm.collectively {
                try SparseAutoencoder(shard: shard, settings: settings, comm: comm, initial: initial, options: options)
            }
            if shapes.isEmpty {
                _ = try trainer.evaluate()
                startup = ProcessStatistics.secondsSinceStart()
                trainer.update()
            }
            for _ in 0..<plan.warmup { _ = try trainer.evaluate(); trainer.update() }
            var optimizerNs: UInt64 = 0
            _ = trainer.gradient.takeTimings()
            let stepMs = try BlockTiming.medianOfBlocks(total: plan.steps, comm: comm) {
                _ = try trainer.evaluate()
                let t0 = DispatchTime.now().uptimeNanoseconds
                trainer.update()
                optimizerNs += DispatchTime.now().uptimeNanoseconds - t0
            }
            let timed = Double(BlockTiming.blocks * plan.stepsPerBlock)
            let optimizerMs = Double(optimizerNs) / 1e6 / timed
            let communicationMs = trainer.gradient.takeTimings().communication * 1e3 / timed
            let floorMs = try GEMMFloor.measure(rows: batch, d: shard.d, h: h, steps: plan.steps, warmup: plan.warmup,
                                                threadsPerRank: threadsPerRank, comm: comm)
            shapes.append(StepReport.Shape(batch: batch, hidden: h, stepMs: stepMs, optimizerMs: optimizerMs,
                                           communicationMs: communicationMs, floorMs: floorMs))
        }
        let rss = try ProcessStatistics.peakRSSPerRank(comm)
        guard comm.isRoot else { return nil }
        var report = StepReport(ranks: comm.size, threadsPerRank: threadsPerRank, cores: ProcessStatistics.cores,
                          examples: shard.info.examples, imageShape: shard.info.imageShape, source: shard.info.source,
                          lambda: plan.lambda, steps: plan.steps, stepsPerBlock: plan.stepsPerBlock,
                          initDirectory: plan.initDirectory, kernels: plan.kernels, shapes: shapes,
                          peakRSSKiB: rss, secondsToFirstStep: startup)
        report.deterministic = plan.deterministic
        return report
    }
}
