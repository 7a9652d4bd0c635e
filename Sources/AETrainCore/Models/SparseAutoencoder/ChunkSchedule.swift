/// How a rank computes its piece of the batch, chunk by chunk (`BatchCut`).
///
/// - The fast modes: one chunk, on the training thread, its products on the rank's BLAS
///   threads; its backward records its own spans.
/// - Deterministic: fixed chunks, several at once on worker threads (the rank's BLAS threads),
///   each product on one thread: OpenBLAS splits a product differently per thread count, so
///   a chunk's bits would otherwise depend on how many threads its rank has. The worker
///   threads record nothing: the chunks' backward and their sum are one span.
struct ChunkSchedule {
    /// Threads that compute chunks at once.
    let workers: Int
    /// The span of the whole backward region; nil: each chunk's backward records its phases.
    let backwardSpan: TraceSpan?
    /// The products run single-threaded.
    let singleThreadedProducts: Bool

    init(options: StepOptions, chunks: Int) {
        workers = options.deterministic ? max(1, min(options.threads, chunks)) : 1
        backwardSpan = options.deterministic ? .chunksBackward : nil
        singleThreadedProducts = options.deterministic
    }

    /// Runs `body` with BLAS on the threads this schedule's products take.
    func withProductThreads<R>(_ body: () throws -> R) rethrows -> R {
        let blasThreads = singleThreadedProducts ? BLASThreads.current : 1
        if blasThreads != 1 { BLASThreads.set(1) }
        defer { if blasThreads != 1 { BLASThreads.set(blasThreads) } }
        return try body()
    }
}
