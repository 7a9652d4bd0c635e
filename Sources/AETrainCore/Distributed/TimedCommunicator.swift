import Dispatch

/// A communicator that counts the time spent in its collectives, for models whose
/// communication happens deep inside their maths (sparse coding's reductions).
public final class TimedCommunicator: Communicator {
    let inner: Communicator
    /// Nanoseconds inside collectives since the last `takeNanoseconds()`.
    public private(set) var nanoseconds: UInt64 = 0

    public init(_ inner: Communicator) { self.inner = inner }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }
    public var localSize: Int { inner.localSize }
    public var localRank: Int { inner.localRank }

    public func takeNanoseconds() -> UInt64 { defer { nanoseconds = 0 }; return nanoseconds }

    private func timed<R>(_ body: () throws -> R) rethrows -> R {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { nanoseconds += DispatchTime.now().uptimeNanoseconds - start }
        return try body()
    }

    public func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        try timed { try inner.allreduce(data, count: count, kind: kind, op: op) }
    }
    public func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        try timed { try inner.startAllreduce(data, count: count, kind: kind, op: op) }
    }
    public func progressReductions() { timed { inner.progressReductions() } }
    public func finishReductions() throws { try timed { try inner.finishReductions() } }
    public func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try timed { try inner.broadcast(data, bytes: bytes, root: root) }
    }
    public func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
        try timed { try inner.gather(send, into: receive, counts: counts, root: root) }
    }
    public func setRecoveryHint(_ hint: String) { inner.setRecoveryHint(hint) }
    public func sharedSegment(bytes: Int) throws -> SharedSegment? { try inner.sharedSegment(bytes: bytes) }
    public func allreduceAcrossNodes(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind) throws {
        try timed { try inner.allreduceAcrossNodes(data, count: count, kind: kind) }
    }
    public func idleBarrier(allowing extraSeconds: Double) throws {
        try timed { try inner.idleBarrier(allowing: extraSeconds) }
    }
    public func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                            bytes receiveBytes: Int, peer: Int) throws {
        try timed { try inner.sendReceive(send, bytes: sendBytes, into: receive, bytes: receiveBytes, peer: peer) }
    }
    public func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                         into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                         offsets receiveOffsets: UnsafePointer<Int>) throws {
        try timed {
            try inner.exchange(send, counts: sendCounts, offsets: sendOffsets, into: receive, counts: receiveCounts, offsets: receiveOffsets)
        }
    }
}
