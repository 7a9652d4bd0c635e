/// How a rank computes its piece of the batch, chunk by chunk (`BatchCut`).
///
/// - The fast modes: one chunk, on the training thread, its products on the rank's BLAS
///   threads; its backward records its own spans. The passes inside the chunk run on
///   `kernelThreads` (the rank's threads); a step whose products those threads split among
///   themselves (topk's X V, every product in bf16) runs BLAS on one thread, so that
///   OpenBLAS's idle threads, which spin for about 0.1 s after each call, never wake beside
///   them.
/// - Deterministic: fixed chunks, several at once on worker threads (the rank's BLAS threads),
///   each product on one thread: OpenBLAS splits a product differently per thread count, so
///   a chunk's bits would otherwise depend on how many threads its rank has. The worker
///   threads record nothing: the chunks' backward and their sum are one span. The passes
///   inside a chunk run on its one thread.
struct ChunkSchedule {
    /// Threads that compute chunks at once.
    let workers: Int
    /// Threads that share the passes inside a chunk.
    let kernelThreads: Int
    /// The span of the whole backward region; nil: each chunk's backward records its phases.
    let backwardSpan: TraceSpan?
    /// BLAS runs on one thread during the step.
    let singleThreadedBLAS: Bool

    /// - kernelProducts: the step's products are split over the rank's threads, not BLAS's
    ///   (topk's X V; every product in bf16).
    init(options: StepOptions, chunks: Int, kernelProducts: Bool = false) {
        workers = options.deterministic ? max(1, min(options.threads, chunks)) : 1
        kernelThreads = options.deterministic ? 1 : max(1, options.threads)
        backwardSpan = options.deterministic ? .chunksBackward : nil
        singleThreadedBLAS = options.deterministic || (kernelProducts && kernelThreads > 1)
    }

    /// Runs `body` with BLAS on the threads this schedule's products take.
    func withProductThreads<R>(_ body: () throws -> R) rethrows -> R {
        let blasThreads = singleThreadedBLAS ? BLASThreads.current : 1
        if blasThreads != 1 { BLASThreads.set(1) }
        defer { if blasThreads != 1 { BLASThreads.set(blasThreads) } }
        return try body()
    }
}
