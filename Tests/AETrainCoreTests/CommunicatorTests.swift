import AETrainCore
import XCTest

/// The communicator's array helpers and its idle barrier on one process.
final class CommunicatorTests: XCTestCase {
    func testGatherOfOneRankIsItsArray() throws {
        let comm = SingleProcess()
        XCTAssertEqual(try comm.gather([1.5, 2, 3] as [Float], counts: [3], root: 0), [1.5, 2, 3])
        XCTAssertEqual(try comm.gather([Int64](), counts: [0], root: 0), [])
    }

    func testTimedCommunicatorForwardsTheIdleBarrier() throws {
        let timed = TimedCommunicator(SingleProcess())
        try timed.idleBarrier()
        try timed.idleBarrier(allowing: 5)
        XCTAssertEqual(try timed.gather([7] as [Int64], counts: [1], root: 0), [7])
    }
}
