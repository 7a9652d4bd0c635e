import AETrainCore
import Foundation
import XCTest

/// The communicator's array helpers and its idle barrier on one process.
final class CommunicatorTests: XCTestCase {
    func testGatherOfOneRankIsItsArray() throws {
        let comm = SingleProcess()
        XCTAssertEqual(try comm.gather([1.5, 2, 3] as [Float], counts: [3], root: 0), [1.5, 2, 3])
        XCTAssertEqual(try comm.gather([Int64](), counts: [0], root: 0), [])
    }

    /// `TimedCommunicator` hands each idle barrier to the communicator it wraps, with the
    /// allowance it was given, and counts the time spent in it as communication.
    func testTimedCommunicatorForwardsTheIdleBarrier() throws {
        let spy = BarrierSpy()
        let timed = TimedCommunicator(spy)
        try timed.idleBarrier()
        try timed.idleBarrier(allowing: 5)
        XCTAssertEqual(spy.barriers, [0, 5], "each barrier reached the wrapped communicator once, with its allowance")
        XCTAssertGreaterThanOrEqual(timed.takeNanoseconds(), 2 * BarrierSpy.nanosecondsPerBarrier, "the barriers' time is counted")
        XCTAssertEqual(timed.takeNanoseconds(), 0, "and taken once")
        XCTAssertEqual(try timed.gather([7] as [Int64], counts: [1], root: 0), [7])
        XCTAssertEqual(spy.barriers, [0, 5], "a gather is not a barrier")
    }
}

/// One process that records the idle barriers it is asked for (their allowances), each taking
/// a set time; everything else behaves as `SingleProcess`.
private final class BarrierSpy: Communicator {
    static let nanosecondsPerBarrier: UInt64 = 2_000_000
    private let inner = SingleProcess()
    private(set) var barriers: [Double] = []
    var rank: Int { 0 }
    var size: Int { 1 }
    var localSize: Int { 1 }
    var localRank: Int { 0 }
    func idleBarrier(allowing extraSeconds: Double) throws {
        barriers.append(extraSeconds)
        usleep(useconds_t(Self.nanosecondsPerBarrier / 1000))
    }
    func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        try inner.allreduce(data, count: count, kind: kind, op: op)
    }
    func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        try inner.startAllreduce(data, count: count, kind: kind, op: op)
    }
    func progressReductions() { inner.progressReductions() }
    func finishReductions() throws { try inner.finishReductions() }
    func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws { try inner.broadcast(data, bytes: bytes, root: root) }
    func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws {
        try inner.gather(send, into: receive, counts: counts, root: root)
    }
    func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                     bytes receiveBytes: Int, peer: Int) throws {
        try inner.sendReceive(send, bytes: sendBytes, into: receive, bytes: receiveBytes, peer: peer)
    }
    func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                  into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                  offsets receiveOffsets: UnsafePointer<Int>) throws {
        try inner.exchange(send, counts: sendCounts, offsets: sendOffsets, into: receive, counts: receiveCounts, offsets: receiveOffsets)
    }
}
