import AETrainCore
import XCTest

/// `--overlap auto`: overlap only across nodes, and only where each rank's node has a core to
/// spare; the ranks agree (the same collectives on every rank).
final class OverlapDecisionTests: XCTestCase {
    func testAutoOverlapsOnlyAcrossNodesWithACoreToSpare() {
        let auto = OverlapMode.auto
        XCTAssertFalse(auto.decide(ranks: 1, ranksPerNode: 1, cores: 16), "one process")
        XCTAssertFalse(auto.decide(ranks: 2, ranksPerNode: 2, cores: 2), "one node, shared memory")
        XCTAssertFalse(auto.decide(ranks: 4, ranksPerNode: 4, cores: 64), "one node, however many cores")
        XCTAssertFalse(auto.decide(ranks: 2, ranksPerNode: 1, cores: 1), "2 hosts, 1 core each (or bound to one core)")
        XCTAssertFalse(auto.decide(ranks: 4, ranksPerNode: 2, cores: 2), "2 hosts × 2 ranks on 2 cores each")
        XCTAssertFalse(auto.decide(ranks: 8, ranksPerNode: 4, cores: 2), "oversubscribed hosts")
        XCTAssertTrue(auto.decide(ranks: 2, ranksPerNode: 1, cores: 2), "2 hosts × 1 rank with 2 cores each")
        XCTAssertTrue(auto.decide(ranks: 64, ranksPerNode: 4, cores: 16), "16 hosts × 4 ranks, 16 cores each")
        for (ranks, perNode, cores) in [(1, 1, 1), (2, 1, 1), (2, 1, 8), (4, 4, 8)] {
            XCTAssertTrue(OverlapMode.always.decide(ranks: ranks, ranksPerNode: perNode, cores: cores))
            XCTAssertFalse(OverlapMode.never.decide(ranks: ranks, ranksPerNode: perNode, cores: cores))
        }
    }

    func testEveryRankTakesTheSameDecision() throws {
        // This rank would overlap (2 cores, alone on its node); another rank's node has none to spare.
        XCTAssertFalse(try OverlapMode.auto.resolve(Ranks(size: 2, localSize: 1, othersAgree: false), cores: 2))
        XCTAssertTrue(try OverlapMode.auto.resolve(Ranks(size: 2, localSize: 1, othersAgree: true), cores: 2))
        XCTAssertFalse(try OverlapMode.auto.resolve(Ranks(size: 2, localSize: 1, othersAgree: true), cores: 1))
        XCTAssertTrue(try OverlapMode.always.resolve(Ranks(size: 2, localSize: 2, othersAgree: false), cores: 1))
        XCTAssertFalse(try OverlapMode.auto.resolve(SingleProcess(), cores: 8))
    }

    func testCgroupQuotaInWholeCores() {
        XCTAssertEqual(NodeCores.quotaCores(cpuMax: "200000 100000\n"), 2)
        XCTAssertEqual(NodeCores.quotaCores(cpuMax: "150000 100000"), 2, "1.5 cores: a second one, partly")
        XCTAssertEqual(NodeCores.quotaCores(cpuMax: "50000 100000"), 1)
        XCTAssertNil(NodeCores.quotaCores(cpuMax: "max 100000"), "cgroup v2: no quota")
        XCTAssertNil(NodeCores.quotaCores(cpuMax: "-1 100000"), "cgroup v1: no quota")
        XCTAssertNil(NodeCores.quotaCores(cpuMax: ""))
        let usable = NodeCores.usable()
        XCTAssertGreaterThanOrEqual(usable, 1)
        XCTAssertLessThanOrEqual(usable, ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// A rank among `size`, `localSize` on its node, whose peers' vote in a min-reduction is
/// `othersAgree` (1 or 0).
private final class Ranks: Communicator {
    let size: Int, localSize: Int, othersAgree: Bool
    init(size: Int, localSize: Int, othersAgree: Bool) { self.size = size; self.localSize = localSize; self.othersAgree = othersAgree }
    var rank: Int { 0 }
    var localRank: Int { 0 }
    func allreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws {
        precondition(kind == .uint64 && count == 1 && op == .min, "the decision is one min-reduction")
        let p = data.assumingMemoryBound(to: UInt64.self)
        p.pointee = min(p.pointee, othersAgree ? 1 : 0)
    }
    func startAllreduce(_ data: UnsafeMutableRawPointer, count: Int, kind: ScalarKind, op: ReduceOp) throws { fatalError("unused") }
    func progressReductions() {}
    func finishReductions() throws {}
    func broadcast(_ data: UnsafeMutableRawPointer, bytes: Int, root: Int) throws { fatalError("unused") }
    func gather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawPointer?, counts: [Int], root: Int) throws { fatalError("unused") }
    func idleBarrier(allowing extraSeconds: Double) throws {}
    func sendReceive(_ send: UnsafeRawPointer, bytes sendBytes: Int, into receive: UnsafeMutableRawPointer,
                     bytes receiveBytes: Int, peer: Int) throws { fatalError("unused") }
    func exchange(_ send: UnsafeRawPointer, counts sendCounts: UnsafePointer<Int>, offsets sendOffsets: UnsafePointer<Int>,
                  into receive: UnsafeMutableRawPointer, counts receiveCounts: UnsafePointer<Int>,
                  offsets receiveOffsets: UnsafePointer<Int>) throws { fatalError("unused") }
}
