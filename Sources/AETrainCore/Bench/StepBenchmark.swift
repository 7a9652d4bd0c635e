import Dispatch
import Foundation

/// The training step against the GEMM floor, at the plan's shape or at each of the sweep's.
///
/// The step is timed through the trainer's own code path (`SparseAutoencoder.evaluate()` then
/// `update()`), after `warmup` untimed steps, as the median of 10 blocks (`BlockTiming`); the
/// floor is `GEMMFloor` at the same shape. The first model's first step also gives the
/// seconds from process start to a first step. Under mpirun, the step is also timed in one
/// process (`SingleProcessStep`), so that one run gives both ratios.
public enum StepBenchmark {
    /// Every rank times; the report on rank 0, nil elsewhere. `initial`: trained weights
    /// (their h replaces the plan's).
    public static func run(_ plan: BenchPlan, shard: DatasetShard, initial: ModelWeights?, threadsPerRank: Int,
                           comm: Communicator) throws -> StepReport? {
        var asked = ExecutionOptions()
        asked.threadsPerRank = threadsPerRank
        asked.stepOptions = StepOptions(kernels: plan.kernels, deterministic: plan.deterministic)
        asked.overlap = plan.overlap
        asked.gradientSum = plan.gradientSum
        let options = try asked.resolve(comm: comm).stepOptions  // collective: every rank, whatever the plan
        var shapes: [StepReport.Shape] = []
        var startup = 0.0
        let loadBefore = ProcessStatistics.loadAverage()
        let stepShapes = plan.stepShapes(initialHidden: initial?.shape.h)
        let trace = try plan.trace.map { path in
            try comm.collectively { try TraceFile.checkWritable(URL(fileURLWithPath: path), comm: comm) }
            return try TraceRecorder(maxSteps: stepShapes.count * BlockTiming.blocks * plan.stepsPerBlock, otherSpans: 0, comm: comm)
        }
        var traced = 0
        var sharedMemoryUsed = options.sharedMemory
        for (batch, h) in stepShapes {
            let settings = plan.settings(batch: batch, hidden: h)
            let trainer = try comm.collectively {
                try SparseAutoencoder(shard: shard, settings: settings, comm: comm, initial: initial, options: options)
            }
            sharedMemoryUsed = sharedMemoryUsed && trainer.store.sharing != nil  // every shape's step
            try plan.gradientSum.checkGranted(resolved: options.sharedMemory, store: trainer.store)
            if shapes.isEmpty {
                _ = try trainer.evaluate()
                startup = ProcessStatistics.secondsSinceStart()
                try trainer.update()
            }
            for _ in 0..<plan.warmup { _ = try trainer.evaluate(); try trainer.update() }
            var optimizerNs: UInt64 = 0
            _ = trainer.gradient.takeTimings()
            if let trace { trainer.record(into: trace) }
            let stepMs = try BlockTiming.medianOfBlocks(total: plan.steps, comm: comm) {
                trace?.beginStep(traced)
                _ = try trainer.evaluate()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try trainer.update()
                optimizerNs += DispatchTime.now().uptimeNanoseconds - t0
                trace?.endStep()
                traced += 1
            }
            let timed = Double(BlockTiming.blocks * plan.stepsPerBlock)
            let optimizerMs = Double(optimizerNs) / 1e6 / timed
            let communicationMs = trainer.gradient.takeTimings().communication * 1e3 / timed
            let floorMs = try GEMMFloor.measure(rows: batch, d: shard.d, h: h, steps: plan.steps, warmup: plan.warmup,
                                                threadsPerRank: threadsPerRank, comm: comm)
            let aloneMs = try SingleProcessStep.measure(plan, settings: settings, initial: initial, threadsPerRank: threadsPerRank, comm: comm)
            shapes.append(StepReport.Shape(batch: batch, hidden: h, stepMs: stepMs, optimizerMs: optimizerMs,
                                           communicationMs: communicationMs, floorMs: floorMs, singleProcessMs: aloneMs))
        }
        if let trace, let path = plan.trace { try TraceFile.write(trace, to: URL(fileURLWithPath: path), comm: comm) }
        let rss = try ProcessStatistics.peakRSSPerRank(comm)
        guard comm.isRoot else { return nil }
        var report = StepReport(ranks: comm.size, threadsPerRank: threadsPerRank, cores: ProcessStatistics.cores,
                          examples: shard.info.examples, dimensions: shard.info.dimensions, imageShape: shard.info.imageShape, source: shard.info.source,
                          lambda: plan.lambda, steps: plan.steps, stepsPerBlock: plan.stepsPerBlock,
                          initDirectory: plan.initDirectory, kernels: plan.kernels, overlap: options.overlap, shapes: shapes,
                          peakRSSKiB: rss, secondsToFirstStep: startup,
                          loadAverage: [loadBefore, ProcessStatistics.loadAverage()])
        report.deterministic = plan.deterministic
        report.precision = plan.precision
        report.sharedMemory = sharedMemoryUsed
        report.activation = plan.architecture.map { a in
            a.activation.rawValue + (a.activation == .topk || a.activation == .batchtopk ? ", k = \(a.k)" : "")
        }
        return report
    }
}
