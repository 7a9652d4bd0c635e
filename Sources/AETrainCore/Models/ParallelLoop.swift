/// A rank's threads sharing one pass (`WorkerThreads`, as many as the rank's BLAS threads): the
/// deterministic step's chunks, and in the fast step TopK's selection, the sparse kernels
/// and the optimizer, which are otherwise one thread's work while the rank's other cores wait
/// for the next product. With one thread the job runs on the caller.
///
/// A job is an object made once (`WorkerJob`), which holds what its pass needs: a closure
/// handed to the threads would be allocated on every call.
///
/// Not reentrant: a job must not run the loop again. The deterministic step's chunks, which
/// already run on its threads, get a serial loop (`ParallelLoop.serial`) for their kernels.
final class ParallelLoop {
    /// Threads that run a job, the caller's included.
    let count: Int
    private let threads: WorkerThreads?

    init(threads count: Int) {
        self.count = max(1, count)
        threads = self.count > 1 ? WorkerThreads(count: self.count) : nil
    }

    /// One thread: the caller's.
    static var serial: ParallelLoop { ParallelLoop(threads: 1) }

    /// Runs job.work(w) for w in 0..<count at once, w = 0 on the calling thread; returns when all are done.
    func run(_ job: WorkerJob) {
        if let threads { threads.run(job) } else { job.work(0) }
    }

    /// Worker w's share of 0..<n, in contiguous pieces that differ by at most one.
    func part(of n: Int, worker w: Int) -> Range<Int> { n * w / count ..< n * (w + 1) / count }
}
