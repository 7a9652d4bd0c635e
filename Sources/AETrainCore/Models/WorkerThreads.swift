import Foundation

/// Work split over `WorkerThreads`: `work(w)` runs worker w's part of the current region.
protocol WorkerJob: AnyObject {
    func work(_ worker: Int)
}

/// A few threads kept for the life of a model, that run the parts of one parallel region and
/// return: the deterministic step's chunks, each on one thread with single-threaded BLAS.
/// (`DispatchQueue.concurrentPerform`, and closures handed to threads, allocate on every call;
/// a job object does not.)
///
/// Each helper thread flushes denormals to zero as the training thread does, so a chunk's
/// bits do not depend on the thread that computes it.
final class WorkerThreads {
    /// Threads in a region, the caller's included.
    let count: Int
    private let state: State

    /// What the helper threads share with the caller. The threads hold it, not the owner, so
    /// that the owner's end stops them.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var generation = 0      // regions started
        var pending = 0         // helpers still in the current region
        var job: WorkerJob?
        var stopping = false
    }

    init(count: Int) {
        self.count = max(1, count)
        state = State()
        for w in 1..<self.count {
            let state = state
            let thread = Thread { WorkerThreads.serve(state, worker: w) }
            thread.name = "aetrain-worker-\(w)"
            thread.start()
        }
    }

    deinit {
        state.condition.lock()
        state.stopping = true
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// Runs job.work(w) for w in 0..<count, w = 0 on the calling thread, and returns when all are done.
    func run(_ job: WorkerJob) {
        guard count > 1 else { job.work(0); return }
        let s = state
        s.condition.lock()
        s.job = job
        s.pending = count - 1
        s.generation += 1
        s.condition.broadcast()
        s.condition.unlock()
        job.work(0)
        s.condition.lock()
        while s.pending > 0 { s.condition.wait() }
        s.job = nil
        s.condition.unlock()
    }

    /// The region's job for worker w. The job is set before the region starts and cleared after
    /// every worker is done, so it is read without the lock.
    private static func work(_ s: State, _ w: Int) { s.job?.work(w) }

    private static func serve(_ s: State, worker w: Int) {
        Denormals.flushToZero()
        var seen = 0
        while true {
            s.condition.lock()
            while s.generation == seen && !s.stopping { s.condition.wait() }
            guard !s.stopping else { s.condition.unlock(); return }
            seen = s.generation
            s.condition.unlock()
            work(s, w)
            s.condition.lock()
            s.pending -= 1
            if s.pending == 0 { s.condition.broadcast() }
            s.condition.unlock()
        }
    }
}
