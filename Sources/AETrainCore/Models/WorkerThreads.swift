import Dispatch
import Foundation
import Synchronization

/// Work split over `WorkerThreads`: `work(w)` runs worker w's part of the current region.
protocol WorkerJob: AnyObject {
    func work(_ worker: Int)
}

/// A few threads kept for the life of a model, that run the parts of one parallel region and
/// return: the deterministic step's chunks, each on one thread with single-threaded BLAS.
/// (`DispatchQueue.concurrentPerform`, and closures handed to threads, allocate on every call;
/// a job object does not.)
///
/// Between regions a helper spins (yielding) for up to `spinSeconds` before it sleeps, as
/// OpenBLAS's own threads do: waking a sleeping thread on a busy 2-core machine can wait for the
/// next scheduler tick (4 ms at HZ = 250), which cost more than the step itself.
///
/// Each helper thread flushes denormals to zero as the training thread does, so a chunk's
/// bits do not depend on the thread that computes it.
final class WorkerThreads {
    /// Threads in a region, the caller's included.
    let count: Int
    private let state: State
    static let spinSeconds = 0.005

    /// What the helper threads share with the caller. The threads hold it, not the owner, so
    /// that the owner's end stops them.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        let generation = Atomic<Int>(0)  // regions started
        let pending = Atomic<Int>(0)     // helpers still in the current region
        let stopping = Atomic<Bool>(false)
        /// Set before a region starts and cleared after every helper is done (so read without a lock).
        var job: WorkerJob?
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
        state.stopping.store(true, ordering: .releasing)
        state.condition.lock()
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// Runs job.work(w) for w in 0..<count, w = 0 on the calling thread, and returns when all are done.
    func run(_ job: WorkerJob) {
        guard count > 1 else { job.work(0); return }
        let s = state
        s.job = job
        s.pending.store(count - 1, ordering: .releasing)
        s.generation.add(1, ordering: .releasing)
        s.condition.lock()
        s.condition.broadcast()
        s.condition.unlock()
        job.work(0)
        while s.pending.load(ordering: .acquiring) > 0 { sched_yield() }
        s.job = nil
    }

    /// The region's job for worker w.
    private static func work(_ s: State, _ w: Int) { s.job?.work(w) }

    private static func serve(_ s: State, worker w: Int) {
        Denormals.flushToZero()
        var seen = 0
        while true {
            var spins = 0
            var deadline: UInt64 = 0
            while s.generation.load(ordering: .acquiring) == seen && !s.stopping.load(ordering: .acquiring) {
                spins += 1
                if spins & 255 != 0 { sched_yield(); continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if deadline == 0 { deadline = now + UInt64(spinSeconds * 1e9) }
                guard now > deadline else { continue }
                s.condition.lock()
                while s.generation.load(ordering: .acquiring) == seen && !s.stopping.load(ordering: .acquiring) { s.condition.wait() }
                s.condition.unlock()
            }
            if s.stopping.load(ordering: .acquiring) { return }
            seen = s.generation.load(ordering: .acquiring)
            work(s, w)
            s.pending.subtract(1, ordering: .releasing)
        }
    }
}
