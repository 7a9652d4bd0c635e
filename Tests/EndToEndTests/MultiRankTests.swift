import AETrainCore
import Foundation
import XCTest

/// The binary under `mpirun`: same trajectory for any number of ranks, identical parameters
/// on every rank. Bad data, printed once by rank 0 whichever rank found it, is `BadDataTests`.
final class MultiRankTests: XCTestCase {
    /// 1, 2 and 4 ranks on the embedded faces with one seed follow one trajectory: the final
    /// parameters agree within 2% relative Frobenius norm after 300 Adam steps (Adam magnifies
    /// rounding in near-zero gradients into lr-sized steps), and the logged terms within 0.5%.
    func testOneTwoAndFourRanksFollowOneTrajectory() throws {
        var dirs: [URL] = []
        defer { for d in dirs { try? FileManager.default.removeItem(at: d) } }
        for ranks in [1, 2, 4] {
            let out = try Harness.temporaryDirectory("ranks\(ranks)")
            dirs.append(out)
            let r = try Harness.mpirun(ranks, ["train", "--out", out.path, "--iterations", "301", "--log-every", "100", "--lambda", "1", "--seed", "3"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("\(ranks) rank(s)"), r.stdout)
            XCTAssertEqual(r.stdout.components(separatedBy: "   nbit").count - 1, 1, "rank 0 alone prints")
        }
        let reference = try Harness.metrics(dirs[0])
        for dir in dirs.dropFirst() {
            let diff = try Harness.relativeDifference(dirs[0], dir)
            XCTAssertLessThan(diff, 0.02, "\(dir.lastPathComponent) vs 1 rank")
            for (a, b) in zip(reference, try Harness.metrics(dir)) {
                for key in ["rec", "spa", "ent", "reg"] {
                    let x = a[key] as? Double ?? .nan, y = b[key] as? Double ?? .nan
                    XCTAssertEqual(x, y, accuracy: 0.005 * max(abs(x), 1), "\(key) at \(a["iteration"] ?? "?")")
                }
            }
        }
    }

    /// Every rank ends with bit-identical parameters, equal to what rank 0 wrote. Each rank
    /// keeps its own copy of θ here (`--gradient-sum allreduce`): ranks sharing one cannot differ.
    func testRanksHoldIdenticalParameters() throws {
        let out = try Harness.temporaryDirectory("identical")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try Harness.mpirun(3, ["train", "--out", out.path, "--iterations", "50", "--log-every", "10", "--debug-rank-checksums",
                                       "--gradient-sum", "allreduce"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let sums = try (0..<3).map { try String(contentsOf: out.appendingPathComponent("checksum.rank\($0)"), encoding: .utf8) }
        XCTAssertEqual(Set(sums).count, 1, "\(sums)")
        // The same checksum from the written files.
        let w = try ModelWeights.load(from: out)
        let store = ParameterStore<Float>(layout: ParameterLayout(w.shape))
        for (i, v) in (w.V + w.W + w.b + w.a).enumerated() { store.params[i] = v }
        XCTAssertEqual(String(store.checksum(), radix: 16), sums[0])
    }

    /// A rank whose parameters drift is caught at the next log step. Only ranks with their own
    /// copy of θ can drift: ranks on one node share one by default (`--gradient-sum`).
    func testParameterMismatchStopsTheRun() throws {
        let out = try Harness.temporaryDirectory("mismatch")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try Harness.mpirun(2, ["train", "--out", out.path, "--iterations", "30", "--log-every", "5", "--debug-perturb-rank", "1",
                                       "--gradient-sum", "allreduce"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines, ["error: ranks hold different parameters at iteration 5 (checksums differ): the ranks ran different code or data"])
    }
}
