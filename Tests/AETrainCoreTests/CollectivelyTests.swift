import AETrainCore
import XCTest

/// The collective error protocol on one process: every error becomes one, except a
/// communication failure, which no collective can carry.
final class CollectivelyTests: XCTestCase {
    struct Unexpected: Error, CustomStringConvertible { var description: String { "disk on fire\nsecond line" } }

    func testAnyErrorBecomesAOneLineUserError() {
        XCTAssertThrowsError(try SingleProcess().collectively { throw Unexpected() }) {
            XCTAssertEqual($0 as? UserError, UserError("disk on fire second line"))
        }
        XCTAssertThrowsError(try SingleProcess().collectively { throw UserError("bad flag") }) {
            XCTAssertEqual($0 as? UserError, UserError("bad flag"))
        }
    }

    func testCommunicationFailureIsRethrownAsIs() {
        let failure = CommunicationFailure(call: "MPI_Allreduce", rank: 0, reason: "peer gone")
        XCTAssertThrowsError(try SingleProcess().collectively { throw failure }) {
            XCTAssertEqual($0 as? CommunicationFailure, failure)
        }
    }

    func testResultPassesThrough() throws {
        XCTAssertEqual(try SingleProcess().collectively { 42 }, 42)
    }
}
