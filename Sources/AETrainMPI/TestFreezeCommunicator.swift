import AETrainCore
import Foundation

/// Test-only: with AETRAIN_TEST_FREEZE_RANK=R and AETRAIN_TEST_FREEZE_AT=N in the environment,
/// rank R stops itself with SIGSTOP on entering its N-th collective call, so that tests can
/// freeze a rank at a chosen point of any command and check that the job still ends.
///
/// A wrapper around the job's communicator, installed by `installed(around:)` on that rank
/// only when both variables are set; otherwise the commands talk to `MPICommunicator` itself.
/// Counted from 1: every allreduce, startAllreduce, broadcast, gather, idle barrier,
/// sendReceive, exchange, allreduce across nodes, shared segment (its set-up is one call) and
/// shared segment's synchronize.
public final class TestFreezeCommunicator: Communicator {
    private let inner: Communicator
    private let freezeAt: Int
    private var calls = 0

    init(_ inner: Communicator, freezeAt: Int) {
        self.inner = inner
        self.freezeAt = freezeAt
    }

    /// `comm` itself, or wrapped when the environment asks to freeze this rank.
    public static func installed(around comm: Communicator,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) -> Communicator {
        guard let rank = environment["AETRAIN_TEST_FREEZE_RANK"].flatMap({ Int($0) }),
              let call = environment["AETRAIN_TEST_FREEZE_AT"].flatMap({ Int($0) }), rank == comm.rank else { return comm }
        return TestFreezeCommunicator(comm, freezeAt: call)
    }

    fileprivate func enterCollective() {
        calls += 1
        if calls == freezeAt { raise(SIGSTOP) }
    }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }
    public var localSize: Int { inner.localSize }
    public var localRank: Int { inner.localRank }

    public func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        enterCollective()
        try inner.allreduce(data, count: count, kind: kind, op: op)
    }

    public func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        enterCollective()
        try inner.startAllreduce(data, count: count, kind: kind, op: op)
    }

    public func progressReductions() { inner.progressReductions() }
    public func finishReductions() throws { try inner.finishReductions() }

    public func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        enterCollective()
        try inner.broadcast(data, bytes: bytes, root: root)
    }

    public func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
        enterCollective()
        try inner.gather(send, into: receive, counts: counts, root: root)
    }

    public func setRecoveryHint(_ hint: String) { inner.setRecoveryHint(hint) }

    public func idleBarrier(allowing extraSeconds: Double) throws {
        enterCollective()
        try inner.idleBarrier(allowing: extraSeconds)
    }

    public func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                            bytes receiveBytes: Int, peer: Int) throws {
        enterCollective()
        try inner.sendReceive(send, bytes: sendBytes, into: receive, bytes: receiveBytes, peer: peer)
    }

    public func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                         into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                         offsets receiveOffsets: UnsafePointer<Int>) throws {
        enterCollective()
        try inner.exchange(send, counts: sendCounts, offsets: sendOffsets, into: receive, counts: receiveCounts, offsets: receiveOffsets)
    }

    public func sharedSegment(bytes: Int) throws -> SharedSegment? {
        enterCollective()
        return try inner.sharedSegment(bytes: bytes).map { CountedSegment($0, owner: self) }
    }

    public func allreduceAcrossNodes(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind) throws {
        enterCollective()
        try inner.allreduceAcrossNodes(data, count: count, kind: kind)
    }
}

/// A shared segment whose `synchronize` counts as a collective call of its owner.
private final class CountedSegment: SharedSegment {
    let inner: SharedSegment
    let owner: TestFreezeCommunicator
    init(_ inner: SharedSegment, owner: TestFreezeCommunicator) { self.inner = inner; self.owner = owner }
    var base: UnsafeMutableRawPointer { inner.base }
    func synchronize() throws {
        owner.enterCollective()
        try inner.synchronize()
    }
}
