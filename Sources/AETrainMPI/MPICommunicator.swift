import AETrainCore
import CMPI
import CProcessControl
import Foundation

/// `Communicator` over MPI_COMM_WORLD. Owns the MPI handles; every MPI return code becomes a
/// Swift error in `check`. Started without `mpirun`, MPI's singleton mode makes it one rank.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    private let world: MPI_Comm
    private var finalized = false
    /// Requests of the started non-blocking reductions, in start order.
    private let pending: UnsafeMutablePointer<MPI_Request?>  // (maxPendingReductions)
    private var pendingCount = 0

    /// Calls MPI_Init. Call once per process, before anything else collective.
    public init() throws {
        guard MPI_Init(nil, nil) == aet_success() else { throw UserError("MPI_Init failed") }
        world = aet_comm_world()
        // Errors come back as codes (and become Swift errors) instead of aborting in MPI.
        MPI_Comm_set_errhandler(world, aet_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
        // The ranks that share this node's memory (and cores).
        var local: MPI_Comm? = aet_comm_null()
        var lr: Int32 = 0, ls: Int32 = 1
        if MPI_Comm_split_type(world, aet_comm_type_shared(), r, aet_info_null(), &local) == aet_success(), local != aet_comm_null() {
            MPI_Comm_rank(local, &lr)
            MPI_Comm_size(local, &ls)
            MPI_Comm_free(&local)
        }
        localRank = Int(lr)
        localSize = Int(ls)
        pending = .allocate(capacity: maxPendingReductions)
        pending.initialize(repeating: aet_request_null(), count: maxPendingReductions)
    }

    deinit { pending.deallocate() }

    public func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        guard size > 1 else { return }
        aet_watchdog_arm(Int32(AET_WAIT_ALLREDUCE))
        defer { aet_watchdog_disarm() }
        try check(MPI_Allreduce(aet_in_place(), data, Int32(count), datatype(kind), mpiOp(op), world), "MPI_Allreduce")
    }

    public func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        guard size > 1 else { return }
        precondition(pendingCount < maxPendingReductions, "more than \(maxPendingReductions) pending reductions")
        try check(MPI_Iallreduce(aet_in_place(), data, Int32(count), datatype(kind), mpiOp(op), world, pending + pendingCount),
                  "MPI_Iallreduce")
        pendingCount += 1
    }

    public func progressReductions() {
        guard pendingCount > 0 else { return }
        var done: Int32 = 0
        MPI_Testall(Int32(pendingCount), pending, &done, aet_statuses_ignore())
    }

    public func finishReductions() throws {
        guard pendingCount > 0 else { return }
        aet_watchdog_arm(Int32(AET_WAIT_ALLREDUCE))
        defer { aet_watchdog_disarm() }
        let n = pendingCount
        pendingCount = 0
        try check(MPI_Waitall(Int32(n), pending, aet_statuses_ignore()), "MPI_Waitall")
    }

    public func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        guard size > 1 else { return }
        aet_watchdog_arm(Int32(AET_WAIT_BROADCAST))
        defer { aet_watchdog_disarm() }
        try check(MPI_Bcast(data, Int32(bytes), aet_char(), Int32(root), world), "MPI_Bcast")
    }

    public func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
        guard size > 1 else {
            if let receive, let base = send.baseAddress { receive.copyMemory(from: base, byteCount: send.count) }
            return
        }
        guard counts.reduce(0, +) <= Int(Int32.max) else {
            throw UserError("cannot gather \(counts.reduce(0, +)) bytes in one MPI call (limit 2 GiB)")
        }
        var counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: counts.count)
        for i in 1..<max(1, counts.count) { displacements[i] = displacements[i - 1] + counts32[i - 1] }
        aet_watchdog_arm(Int32(AET_WAIT_GATHER))
        defer { aet_watchdog_disarm() }
        try check(MPI_Gatherv(send.baseAddress, Int32(send.count), aet_char(), receive, &counts32, &displacements,
                              aet_char(), Int32(root), world), "MPI_Gatherv")
    }

    /// A barrier that sleeps while it waits instead of spinning, so that a rank can use every
    /// core of the node while the others wait (benchmarks measure the floor this way).
    public func idleBarrier() {
        guard size > 1 else { return }
        var request: MPI_Request? = aet_request_null()
        MPI_Ibarrier(world, &request)
        var done: Int32 = 0
        while done == 0 {
            MPI_Test(&request, &done, aet_status_ignore())
            if done == 0 { usleep(500) }
        }
    }

    /// Ends MPI cleanly; every rank must call it. Covered by the watchdog once started.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        if size > 1 { aet_watchdog_arm(Int32(AET_WAIT_FINALIZE)) }
        MPI_Finalize()
        aet_watchdog_disarm()
    }

    /// From now on, a collective that waits longer than `timeout` seconds ends this process
    /// (exit status 1) and, on rank 0, prints `message`: a peer is dead or unreachable, and
    /// MPI alone would wait forever. No-op for one rank.
    public func startWatchdog(timeout: Double, message: String) {
        guard size > 1 else { return }
        aet_watchdog_start(timeout, message, rank == 0 ? 1 : 0)
    }

    /// Ends the whole job from this rank (when the others cannot be reached collectively).
    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    private func datatype(_ kind: ScalarKind) -> MPI_Datatype {
        switch kind {
        case .float32: aet_float()
        case .float64: aet_double()
        case .uint64: aet_uint64()
        }
    }

    private func mpiOp(_ op: ReduceOp) -> MPI_Op {
        switch op {
        case .sum: aet_op_sum()
        case .min: aet_op_min()
        case .max: aet_op_max()
        }
    }

    /// The one place an MPI return code is handled. A failed collective leaves the ranks in
    /// different places (some may wait forever), so this rank reports it and ends at once;
    /// mpirun then ends the others.
    private func check(_ code: Int32, _ call: String, file: StaticString = #fileID, line: UInt = #line) throws {
        guard code != aet_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(aet_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        fputs("error: \(call) failed on rank \(rank) (\(file):\(line)): \(String(cString: buffer)); a peer may have died\n", stderr)
        _exit(1)
    }
}
