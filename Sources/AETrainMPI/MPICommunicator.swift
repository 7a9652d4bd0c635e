import AETrainCore
import CMPI
import CProcessControl
import Foundation

/// `Communicator` over MPI_COMM_WORLD. Owns the MPI handles; every MPI return code goes through
/// `check`, which throws a `CommunicationFailure`. Started without `mpirun`, MPI's singleton
/// mode makes it one rank.
public final class MPICommunicator: Communicator {
    public private(set) var rank: Int
    public private(set) var size: Int
    public private(set) var localRank: Int
    public private(set) var localSize: Int
    private let world: MPI_Comm
    /// The ranks of this node (MPI's shared-memory split), and the ranks that have this rank's
    /// index on their nodes (`allreduceAcrossNodes`).
    private var node: MPI_Comm? = aet_comm_null()
    private var peers: MPI_Comm? = aet_comm_null()
    private var finalized = false
    /// Requests of the started non-blocking reductions, in start order.
    private let pending: UnsafeMutablePointer<MPI_Request?>  // (maxPendingReductions)
    private var pendingCount = 0
    /// A failure seen while reductions were progressing, thrown by `finishReductions`.
    private var progressFailure: CommunicationFailure?
    /// `exchange`'s counts and displacements as MPI takes them: 4 × size Int32, made once.
    private var exchangeCounts: UnsafeMutablePointer<Int32>?
    /// Shared-memory windows (`sharedSegment`), in the order every rank made them.
    private var windows: [SharedWindow] = []

    /// The peer timeout until a command sets its own (its flags are parsed after MPI starts).
    public static let defaultPeerTimeout = 60.0
    /// What the watchdog prints when no checkpoint or other advice applies.
    public static let stoppedRankMessage = "a rank stopped responding (frozen, dead or its host cut off); the job ends"

    /// Calls MPI_Init. Call once per process, before anything else collective. Under mpirun
    /// the watchdog already covers MPI's start-up with `defaultPeerTimeout`.
    public init() throws {
        // mpirun tells each process its rank and the job's size before MPI starts.
        let environment = ProcessInfo.processInfo.environment
        let launchedSize = environment["OMPI_COMM_WORLD_SIZE"].flatMap { Int($0) } ?? 1
        let launchedRank = environment["OMPI_COMM_WORLD_RANK"].flatMap { Int32($0) } ?? 0
        if launchedSize > 1 { aet_watchdog_start(Self.defaultPeerTimeout, Self.stoppedRankMessage, launchedRank) }
        aet_watchdog_arm(Int32(AET_WAIT_INIT))
        defer { aet_watchdog_disarm() }
        rank = Int(launchedRank)  // for messages until MPI says
        size = launchedSize
        localRank = 0
        localSize = 1
        world = aet_comm_world()
        pending = .allocate(capacity: maxPendingReductions)
        pending.initialize(repeating: aet_request_null(), count: maxPendingReductions)
        try check(MPI_Init(nil, nil), "MPI_Init")
        // Errors come back as codes (and become Swift errors) instead of aborting in MPI.
        try check(MPI_Comm_set_errhandler(world, aet_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(world, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(world, &s), "MPI_Comm_size")
        rank = Int(r)
        size = Int(s)
        // The ranks that share this node's memory (and cores).
        var lr: Int32 = 0, ls: Int32 = 1
        try check(MPI_Comm_split_type(world, aet_comm_type_shared(), r, aet_info_null(), &node), "MPI_Comm_split_type")
        if node != aet_comm_null() {
            try check(MPI_Comm_set_errhandler(node, aet_errors_return()), "MPI_Comm_set_errhandler")
            try check(MPI_Comm_rank(node, &lr), "MPI_Comm_rank")
            try check(MPI_Comm_size(node, &ls), "MPI_Comm_size")
        }
        localRank = Int(lr)
        localSize = Int(ls)
        // The ranks with this node-local index, one per node (every node's, if they all have it).
        try check(MPI_Comm_split(world, lr, r, &peers), "MPI_Comm_split")
        try check(MPI_Comm_set_errhandler(peers, aet_errors_return()), "MPI_Comm_set_errhandler")
    }

    deinit {
        pending.deallocate()
        exchangeCounts?.deallocate()
    }

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

    /// Called inside compute kernels, which cannot throw: a failure is kept and thrown by
    /// `finishReductions`, which every started reduction reaches.
    public func progressReductions() {
        guard pendingCount > 0, progressFailure == nil else { return }
        var done: Int32 = 0
        do { try check(MPI_Testall(Int32(pendingCount), pending, &done, aet_statuses_ignore()), "MPI_Testall") } catch {
            progressFailure = error as? CommunicationFailure
        }
    }

    public func finishReductions() throws {
        if let failure = progressFailure { throw failure }
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

    /// `Communicator.idleBarrier`: `MPI_Ibarrier` polled every 0.5 ms, so that waiting costs
    /// no core. The watchdog allows `extraSeconds` beyond the peer timeout.
    public func idleBarrier(allowing extraSeconds: Double) throws {
        guard size > 1 else { return }
        aet_watchdog_arm_allowing(Int32(AET_WAIT_BARRIER), extraSeconds)
        defer { aet_watchdog_disarm() }
        var request: MPI_Request? = aet_request_null()
        try check(MPI_Ibarrier(world, &request), "MPI_Ibarrier")
        var done: Int32 = 0
        while done == 0 {
            try check(MPI_Test(&request, &done, aet_status_ignore()), "MPI_Test")
            if done == 0 { usleep(500) }
        }
    }

    /// `Communicator.sendReceive`: MPI_Sendrecv in pieces of at most 1 GiB (MPI counts are Int32).
    public func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                            bytes receiveBytes: Int, peer: Int) throws {
        precondition(peer != rank && peer >= 0 && peer < size, "sendReceive: peer \(peer) of \(size) ranks from rank \(rank)")
        aet_watchdog_arm(Int32(AET_WAIT_ALLREDUCE))
        defer { aet_watchdog_disarm() }
        let piece = 1 << 30
        var done = 0
        // Both partners step through max(sendBytes, receiveBytes) alike; a side with less has
        // empty pieces at the end.
        while done < max(sendBytes, receiveBytes) || done == 0 {
            let s = max(0, min(piece, sendBytes - done)), r = max(0, min(piece, receiveBytes - done))
            try check(MPI_Sendrecv(send + min(done, sendBytes), Int32(s), aet_char(), Int32(peer), 0,
                                   receive + min(done, receiveBytes), Int32(r), aet_char(), Int32(peer), 0,
                                   world, aet_status_ignore()), "MPI_Sendrecv")
            done += piece
        }
    }

    /// `Communicator.exchange`: MPI_Alltoallv of bytes; a rank's total must stay below 2 GiB.
    public func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                         into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                         offsets receiveOffsets: UnsafePointer<Int>) throws {
        guard size > 1 else {
            (receive + receiveOffsets[0]).copyMemory(from: send + sendOffsets[0], byteCount: sendCounts[0])
            return
        }
        let n = size
        let c = exchangeCounts ?? {
            let c = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * n)
            exchangeCounts = c
            return c
        }()
        for q in 0..<n {
            precondition(sendOffsets[q] + sendCounts[q] <= Int(Int32.max) && receiveOffsets[q] + receiveCounts[q] <= Int(Int32.max),
                         "exchange: more than 2 GiB")
            c[q] = Int32(sendCounts[q]); c[n + q] = Int32(sendOffsets[q])
            c[2 * n + q] = Int32(receiveCounts[q]); c[3 * n + q] = Int32(receiveOffsets[q])
        }
        aet_watchdog_arm(Int32(AET_WAIT_GATHER))
        defer { aet_watchdog_disarm() }
        try check(MPI_Alltoallv(send, c, c + n, aet_char(), receive, c + 2 * n, c + 3 * n, aet_char(), world), "MPI_Alltoallv")
    }

    /// `Communicator.sharedSegment`: an MPI-3 shared-memory window on this node's ranks
    /// (`MPI_Win_allocate_shared`, all of it in the node's first rank's part, every rank of the
    /// node mapping it), under one passive epoch for its life. Every node must have the same
    /// number of ranks, 2 or more.
    /// Windows are freed by `finalize` only: MPI_Win_free is collective, and the last user of a
    /// segment may let go of it at different points on different ranks. A window every rank has
    /// released is handed out again (one agreement per window, at set-up). Nil on every rank
    /// when the file system that backs the windows lacks room for it (a container's /dev/shm is
    /// often 64 MB): the caller then keeps its memory to itself.
    public func sharedSegment(bytes: Int) throws -> SharedSegment? {
        guard size > 1, bytes > 0 else { return nil }
        guard try allAgree(on: UInt64(localSize)), localSize > 1 else { return nil }
        for window in windows {
            let free: UInt64 = window.leased || window.bytes < bytes ? 0 : 1
            if try allreduce(free, op: .min) == 1 { return try lease(window) }
        }
        let room: UInt64 = Self.backingRoom() >= bytes + (16 << 20) ? 1 : 0
        guard try allreduce(room, op: .min) == 1 else { return nil }
        var address: UnsafeMutableRawPointer?
        var handle: MPI_Win? = aet_win_null()
        var mapped: MPI_Aint = 0, unit: Int32 = 0
        do {
                aet_watchdog_arm(Int32(AET_WAIT_ALLREDUCE))
            defer { aet_watchdog_disarm() }
            // The node's first rank holds the whole segment (64 bytes more, for alignment); the
            // node's others map it.
            try check(MPI_Win_allocate_shared(MPI_Aint(localRank == 0 ? bytes + 64 : 0), 1, aet_info_null(), node, &address, &handle),
                      "MPI_Win_allocate_shared")
            // Errors on the window come back as codes too (a window's default is to abort).
            try check(MPI_Win_set_errhandler(handle, aet_errors_return()), "MPI_Win_set_errhandler")
            try check(MPI_Win_shared_query(handle, 0, &mapped, &unit, &address), "MPI_Win_shared_query")
            try check(MPI_Win_lock_all(MPI_MODE_NOCHECK, handle), "MPI_Win_lock_all")
        }
        guard let address, Int(mapped) >= bytes + 64 else {
            throw CommunicationFailure(call: "MPI_Win_shared_query", rank: rank, reason: "the shared segment is smaller than requested")
        }
        // Every rank maps the segment at its own address; the offset to the first 64-byte
        // boundary must be the same on all (it is where the layout starts), and is checked.
        let offset = (64 - Int(bitPattern: address) % 64) % 64
        guard try allAgree(on: UInt64(offset)) else {
            throw CommunicationFailure(call: "MPI_Win_shared_query", rank: rank, reason: "the ranks map the shared segment at different offsets from a 64-byte boundary")
        }
        let window = SharedWindow(handle: handle, base: address + offset, bytes: bytes, owner: self)
        windows.append(window)
        return try lease(window)
    }

    /// Free bytes where Open MPI puts shared windows' backing files (`osc_sm_backing_directory`,
    /// /dev/shm unless set in the environment); 0 if it cannot be read.
    private static func backingRoom() -> Int {
        let directory = ProcessInfo.processInfo.environment["OMPI_MCA_osc_sm_backing_directory"] ?? "/dev/shm"
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return 0 }
        return Int(fs.f_bavail) * Int(fs.f_frsize)
    }

    /// Hands `window` out, zero-filled by the node's first rank before any rank sees it.
    private func lease(_ window: SharedWindow) throws -> SharedSegment {
        if localRank == 0 { window.base.initializeMemory(as: UInt8.self, repeating: 0, count: window.bytes) }
        window.leased = true
        let lease = SegmentLease(window)
        try lease.synchronize()
        return lease
    }

    /// `SharedSegment.synchronize`: MPI's shared-memory model (MPI 4.0, §12.7): a fence, a
    /// barrier of the node's ranks, a fence.
    fileprivate func synchronize(_ window: SharedWindow) throws {
        aet_watchdog_arm(Int32(AET_WAIT_BARRIER))
        defer { aet_watchdog_disarm() }
        try check(MPI_Win_sync(window.handle), "MPI_Win_sync")
        try check(MPI_Barrier(node), "MPI_Barrier")
        try check(MPI_Win_sync(window.handle), "MPI_Win_sync")
    }

    /// `Communicator.allreduceAcrossNodes`: MPI_Allreduce among the ranks with this rank's
    /// node-local index.
    public func allreduceAcrossNodes(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind) throws {
        guard size > localSize else { return }
        aet_watchdog_arm(Int32(AET_WAIT_ALLREDUCE))
        defer { aet_watchdog_disarm() }
        try check(MPI_Allreduce(aet_in_place(), data, Int32(count), datatype(kind), mpiOp(.sum), peers), "MPI_Allreduce")
    }

    /// Ends MPI cleanly; every rank must call it. Covered by the watchdog once started.
    public func finalize() throws {
        guard !finalized else { return }
        finalized = true
        aet_watchdog_arm(Int32(AET_WAIT_FINALIZE))
        defer { aet_watchdog_disarm() }
        for window in windows {
            try check(MPI_Win_unlock_all(window.handle), "MPI_Win_unlock_all")
            try check(MPI_Win_free(&window.handle), "MPI_Win_free")
        }
        windows = []
        if node != aet_comm_null() { try check(MPI_Comm_free(&node), "MPI_Comm_free") }
        if peers != aet_comm_null() { try check(MPI_Comm_free(&peers), "MPI_Comm_free") }
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    /// From now on, a collective that waits longer than `timeout` seconds ends this process
    /// (exit status 1) with `message` on stderr: a peer is dead or unreachable, and MPI alone
    /// would wait forever. Rank 0 prints at once, the others only if still alive a few seconds
    /// later. Called again, it changes the timeout and the message. No-op for one rank.
    public func startWatchdog(timeout: Double, message: String = MPICommunicator.stoppedRankMessage) {
        guard size > 1 else { return }
        aet_watchdog_start(timeout, message, Int32(rank))
    }

    /// Changes what the watchdog prints (e.g. where the run's checkpoints are and how to resume).
    public func setWatchdogMessage(_ message: String) {
        aet_watchdog_set_message(message)
    }

    /// The run engine's word on how to recover, after the watchdog's own message.
    public func setRecoveryHint(_ hint: String) {
        setWatchdogMessage(Self.stoppedRankMessage + "; " + hint)
    }

    /// Ends this process at once after a `CommunicationFailure`: the other ranks may be
    /// unreachable, so no collective can agree on anything; mpirun ends them when this rank
    /// exits nonzero. (MPI_Abort would need the very runtime that may have failed.)
    public func abandon(code: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        _exit(code)
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

    /// The one place an MPI return code is handled. A failed call leaves the ranks in different
    /// places (some may wait forever), so no rank can recover: the error ends the job.
    private func check(_ code: Int32, _ call: String) throws {
        guard code != aet_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(aet_max_error_string()) + 1)
        var length: Int32 = 0
        let described = MPI_Error_string(code, &buffer, &length) == aet_success()
        throw CommunicationFailure(call: call, rank: rank, reason: described ? String(cString: buffer) : "MPI error code \(code)")
    }
}

/// One MPI shared-memory window of `bytes` usable bytes at `base`.
private final class SharedWindow {
    var handle: MPI_Win?
    let base: UnsafeMutableRawPointer
    let bytes: Int
    unowned let owner: MPICommunicator
    /// Some user on this rank still holds it.
    var leased = false

    init(handle: MPI_Win?, base: UnsafeMutableRawPointer, bytes: Int, owner: MPICommunicator) {
        self.handle = handle; self.base = base; self.bytes = bytes; self.owner = owner
    }
}

/// A user's hold on a window: released (on this rank) when the user lets go of it.
private final class SegmentLease: SharedSegment {
    let window: SharedWindow
    init(_ window: SharedWindow) { self.window = window }
    deinit { window.leased = false }
    var base: UnsafeMutableRawPointer { window.base }
    func synchronize() throws { try window.owner.synchronize(window) }
}
