import Foundation

/// Reduction operators the trainer needs.
public enum ReduceOp: Sendable { case sum, min, max }

/// The processes that train one model together. Rank 0 of `size` prints and writes files.
///
/// The core library talks only to this protocol; `AETrainMPI.MPICommunicator` implements it
/// over MPI and `SingleProcess` is the degenerate case of one rank. All methods are
/// collective: every rank calls them in the same order. A failed call throws
/// `CommunicationFailure`.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Ranks on this node (for sharing its cores) and this rank's index among them.
    var localSize: Int { get }
    var localRank: Int { get }

    /// In-place allreduce of `count` elements of `kind` at `data`.
    func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws
    /// Starts an in-place allreduce and returns at once; `data` must not be touched until
    /// `finishReductions()`. At most `maxPendingReductions` may be pending.
    func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws
    /// Lets pending reductions advance. MPI moves a non-blocking collective only inside MPI
    /// calls (there is no progress thread), so compute between the start and the finish
    /// calls this at its phase boundaries. It cannot throw (compute kernels call it): a failure
    /// is kept and thrown by `finishReductions()`.
    func progressReductions()
    /// Waits for every started reduction, in the order they were started.
    func finishReductions() throws
    /// Broadcast of `bytes` bytes at `data` from `root`.
    func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws
    /// Gathers each rank's `send` bytes, in rank order, into `receive` on `root` (which must
    /// hold the sum of `counts`, one count per rank, in bytes; ignored elsewhere).
    func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws
    /// What the peer watchdog says, after its own message, when a collective times out:
    /// how to recover (where the last checkpoint is). Local.
    func setRecoveryHint(_ hint: String)
    /// A barrier that sleeps while it waits instead of spinning, so that one rank can use
    /// every core of the node while the others wait (the benchmark's GEMM floor). A peer
    /// watchdog allows `extraSeconds` beyond its timeout: the time the others are known to
    /// spend working before they arrive.
    func idleBarrier(allowing extraSeconds: Double) throws
    /// Sends `sendBytes` bytes at `send` to rank `peer` and receives `receiveBytes` bytes from
    /// it into `receive`, at once (MPI_Sendrecv): a pairwise exchange, called by both partners
    /// only (not collective). `peer` is never this rank.
    func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                     bytes receiveBytes: Int, peer: Int) throws
    /// Personalized all-to-all (MPI_Alltoallv): rank q receives `sendCounts[q]` bytes from
    /// `send + sendOffsets[q]`, and this rank receives `receiveCounts[s]` bytes from rank s at
    /// `receive + receiveOffsets[s]`. Each of the four arrays holds `size` entries.
    func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                  into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                  offsets receiveOffsets: UnsafePointer<Int>) throws
    /// `bytes` bytes of memory that every rank of this node maps at once (a segment per node),
    /// or nil on every rank when that is not possible (one rank, one rank on some node, nodes
    /// with different numbers of ranks, or no room for it where a node keeps shared memory).
    /// Collective. Zero-filled; a segment is reused once every rank has released it. A failed
    /// allocation throws `CommunicationFailure`.
    func sharedSegment(bytes: Int) throws -> SharedSegment?
    /// In-place sum of `count` elements over the ranks that have this rank's `localRank`, one
    /// on each node: with every node's ranks sharing a segment, the sum across nodes of what
    /// each node summed in it. Collective over those ranks; nothing to do on one node.
    func allreduceAcrossNodes(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind) throws
}

/// Memory shared by the ranks of one node (`Communicator.sharedSegment`), and the one way to
/// order their reads and writes of it.
public protocol SharedSegment: AnyObject {
    /// The segment's first byte, 64-byte aligned: the same memory (at this rank's address).
    var base: UnsafeMutableRawPointer { get }
    /// Collective over the node's ranks: every rank's writes to the segment before the call are
    /// visible to every rank after it, and no rank leaves before all have arrived (a barrier
    /// between two memory fences).
    func synchronize() throws
}

/// One process alone: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localSize: Int { 1 }
    public var localRank: Int { 0 }
    public func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {}
    public func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {}
    public func progressReductions() {}
    public func finishReductions() throws {}
    public func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
    public func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
        if let receive, let base = send.baseAddress { receive.copyMemory(from: base, byteCount: send.count) }
    }
    public func idleBarrier(allowing extraSeconds: Double) throws {}
    public func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                            bytes receiveBytes: Int, peer: Int) throws {
        preconditionFailure("sendReceive: one process has no peer")
    }
    public func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                         into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                         offsets receiveOffsets: UnsafePointer<Int>) throws {
        precondition(sendCounts[0] == receiveCounts[0], "exchange: one process sends what it receives")
        (receive + receiveOffsets[0]).copyMemory(from: send + sendOffsets[0], byteCount: sendCounts[0])
    }
}

/// How many non-blocking reductions a communicator holds at once (the step uses 3).
public let maxPendingReductions = 4

extension Communicator {
    public var isRoot: Bool { rank == 0 }
    public func setRecoveryHint(_ hint: String) {}
    /// No shared memory unless the communicator provides it (MPI's).
    public func sharedSegment(bytes: Int) throws -> SharedSegment? { nil }
    /// One node (the default): every rank is on it, there is nothing to sum across nodes.
    public func allreduceAcrossNodes(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind) throws {
        precondition(localSize == size, "allreduceAcrossNodes: this communicator has no ranks on other nodes")
    }

    public func startAllreduceSum<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int) throws {
        try startAllreduce(data, count: count, kind: T.scalarKind, op: .sum)
    }

    public func allreduceSum<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int) throws {
        try allreduce(data, count: count, kind: T.scalarKind, op: .sum)
    }

    public func allreduce(_ value: UInt64, op: ReduceOp) throws -> UInt64 {
        var v = value
        try allreduce(&v, count: 1, kind: .uint64, op: op)
        return v
    }

    /// An `idleBarrier` whose peers arrive without extra work first.
    public func idleBarrier() throws { try idleBarrier(allowing: 0) }

    /// Each rank's `local` array, concatenated in rank order on `root` (empty elsewhere).
    /// `counts` holds every rank's element count; `local.count` must be `counts[rank]`.
    public func gather<T: Numeric>(_ local: [T], counts: [Int], root: Int) throws -> [T] {
        precondition(counts.count == size && local.count == counts[rank], "gather: counts do not match the ranks' arrays")
        let stride = MemoryLayout<T>.stride
        var all = [T](repeating: 0, count: rank == root ? counts.reduce(0, +) : 0)
        try local.withUnsafeBytes { send in
            try all.withUnsafeMutableBytes { receive in
                // `receive` holds sum(counts) elements on root; its address is ignored elsewhere.
                try gather(send, into: receive.baseAddress, counts: counts.map { $0 * stride }, root: root)
            }
        }
        return all
    }

    public func allreduceSum(_ values: inout [Double]) throws {
        let n = values.count
        try values.withUnsafeMutableBufferPointer {
            guard let base = $0.baseAddress else { return }  // empty: nothing to reduce
            try allreduce(base, count: n, kind: .float64, op: .sum)
        }
    }

    /// Broadcasts `data` (meaningful on `root`) to every rank: its length, then its bytes.
    public func broadcast(_ data: Data, root: Int) throws -> Data {
        var count = UInt64(data.count)
        try broadcast(&count, bytes: 8, root: root)
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(count))
        if count > 0 {
            try bytes.withUnsafeMutableBytes {
                guard let base = $0.baseAddress else { return }
                try broadcast(base, bytes: Int(count), root: root)
            }
        }
        return Data(bytes)
    }

    /// True on every rank iff every rank passed the same value.
    public func allAgree(on value: UInt64) throws -> Bool {
        try allreduce(value, op: .min) == allreduce(value, op: .max)
    }

    /// Runs `body` on every rank and makes its outcome collective: if it threw on any rank,
    /// every rank throws a `UserError` with the message of the lowest such rank (so rank 0 can
    /// print it once, and no rank is left waiting in a later collective). Errors other than
    /// `UserError` travel as their description. A `CommunicationFailure` is rethrown at once:
    /// the ranks can no longer agree on anything.
    public func collectively<R>(_ body: () throws -> R) throws -> R {
        var result: R?
        var failure: String?
        do { result = try body() } catch let e as CommunicationFailure { throw e } catch let e as UserError {
            failure = e.message
        } catch {
            failure = String(describing: error).split(separator: "\n").joined(separator: " ")  // one line
        }
        let first = try allreduce(UInt64(failure == nil ? size : rank), op: .min)
        if first == UInt64(size), let result { return result }
        let root = Int(first)
        // The message travels as a fixed-size, NUL-padded buffer.
        var bytes = [UInt8](repeating: 0, count: 1024)
        if rank == root, let failure { for (i, c) in failure.utf8.prefix(1023).enumerated() { bytes[i] = c } }
        try bytes.withUnsafeMutableBytes {
            guard let base = $0.baseAddress else { return }  // 1024 bytes: never nil
            try broadcast(base, bytes: 1024, root: root)
        }
        let message = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        throw UserError(message)
    }
}
