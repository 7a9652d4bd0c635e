import AETrainCore
import Foundation
import XCTest

/// Runs `aetrain ARGUMENTS` on a number of ranks: `mpirun` on this machine here, the namespace
/// cluster in `MultiHostTests`.
typealias Launcher = (_ ranks: Int, _ arguments: [String]) throws -> Run

/// The checks behind "bit-identical on 1, 2 and 4 ranks", for any launcher.
enum BitIdentity {
    /// What must be the same bytes: the weights and the first examples' codes.
    static let files = ["V.npy", "W.npy", "b.npy", "a.npy", "activations.npy"]
    /// The logged terms that must be equal (timings aside).
    static let terms = ["rec", "spa", "ent", "reg", "l0", "loss", "explained_variance", "dead_units", "sparse_step_fraction"]

    /// Trains `arguments` (with --deterministic) on each of `rankCounts` into `dir/ranksP` and
    /// checks that every run wrote the same bytes and logged the same terms as the first.
    @discardableResult
    static func assertRankCountsAgree(_ rankCounts: [Int], _ arguments: [String], in dir: URL, launch: Launcher,
                                      terms: [String] = terms, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        var outs: [URL] = []
        for ranks in rankCounts {
            let out = dir.appendingPathComponent("ranks\(ranks)")
            let r = try launch(ranks, ["train", "--deterministic", "--quiet", "--out", out.path] + arguments)
            XCTAssertEqual(r.status, 0, "\(ranks) ranks: \(r.stderr)", file: file, line: line)
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
            XCTAssertEqual(config?["ranks"] as? Int, ranks, file: file, line: line)
            outs.append(out)
        }
        for out in outs.dropFirst() { try assertSame(outs[0], out, terms: terms, file: file, line: line) }
        return outs[0]
    }

    /// `a` and `b` hold the same bytes in `files` and the same logged terms, every one of
    /// `terms` present on every line of both (a term missing from both is a failure, not a match).
    static func assertSame(_ a: URL, _ b: URL, terms: [String] = terms, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in files {
            let x = try Data(contentsOf: a.appendingPathComponent(name)), y = try Data(contentsOf: b.appendingPathComponent(name))
            XCTAssertGreaterThan(x.count, 128, "\(name) holds an array", file: file, line: line)
            XCTAssertTrue(x == y, "\(name): \(b.lastPathComponent) differs from \(a.lastPathComponent)", file: file, line: line)
        }
        let (ma, mb) = (try Harness.metrics(a), try Harness.metrics(b))
        XCTAssertFalse(ma.isEmpty, "metrics lines", file: file, line: line)
        XCTAssertEqual(ma.count, mb.count, "metrics lines", file: file, line: line)
        for (x, y) in zip(ma, mb) {
            XCTAssertEqual(x["iteration"] as? Int, y["iteration"] as? Int, "the same log lines", file: file, line: line)
            for key in terms {
                let at = "\(key) at iteration \(x["iteration"] ?? "?")"
                guard let u = x[key] as? Double, let v = y[key] as? Double else {
                    XCTFail("\(at): missing from \(x[key] == nil ? a.lastPathComponent : b.lastPathComponent)", file: file, line: line)
                    continue
                }
                XCTAssertEqual(u.bitPattern, v.bitPattern, "\(at): \(u) and \(v)", file: file, line: line)
            }
        }
    }

    /// A run stopped at iteration `at` on `stopRanks` ranks, resumed on each of `resumeRanks`
    /// to `arguments`' end, ends with the bytes of `whole` (an uninterrupted run).
    static func assertResumeAcrossRankCounts(stopRanks: Int, at: Int, resumeRanks: [Int], total: Int, _ arguments: [String],
                                             matching whole: URL, in dir: URL, launch: Launcher,
                                             file: StaticString = #filePath, line: UInt = #line) throws {
        let stopped = dir.appendingPathComponent("stopped\(stopRanks)")
        let first = try launch(stopRanks, ["train", "--deterministic", "--quiet", "--out", stopped.path, "--iterations", "\(at)"] + arguments)
        XCTAssertEqual(first.status, 0, first.stderr, file: file, line: line)
        for ranks in resumeRanks {
            let out = dir.appendingPathComponent("resumed\(stopRanks)to\(ranks)")
            try FileManager.default.copyItem(at: stopped, to: out)
            // Without the flag: a deterministic run stays deterministic when resumed.
            let r = try launch(ranks, ["train", "--quiet", "--resume", out.path, "--iterations", "\(total)"])
            XCTAssertEqual(r.status, 0, "resumed on \(ranks) ranks: \(r.stderr)", file: file, line: line)
            for name in files {
                let x = try Data(contentsOf: whole.appendingPathComponent(name)), y = try Data(contentsOf: out.appendingPathComponent(name))
                XCTAssertTrue(x == y, "\(name): stopped on \(stopRanks) ranks at \(at), resumed on \(ranks): differs from the uninterrupted run",
                              file: file, line: line)
            }
        }
    }
}

/// `--deterministic` on this machine: 1, 2 and 4 ranks (4 oversubscribed on 2 cores) write the
/// same bytes, and a run resumes on another rank count bit for bit.
final class DeterminismTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("determinism") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let launch: Launcher = { ranks, arguments in try Harness.mpirun(ranks, arguments, timeout: 600) }

    /// The sheet's sparse model (λ = 1: the entropy and L1 terms) on the embedded faces,
    /// 300 steps; then stopped at 150 on 2 ranks and resumed on 1 and on 4. Every sum has a
    /// fixed order, so equal bytes at a step mean the same arithmetic at every step: the length
    /// only needs to cross a checkpoint and a few log lines (the switch to the sparse kernels,
    /// after about 2,000 steps, is `testWithoutL1AndOnTheSparseKernels`'s, with them forced).
    func testOneTwoAndFourRanksWriteTheSameBytes() throws {
        let arguments = ["--lambda", "1", "--iterations", "300", "--log-every", "50", "--seed", "3"]
        let whole = try BitIdentity.assertRankCountsAgree([1, 2, 4], arguments, in: dir, launch: launch)
        try BitIdentity.assertResumeAcrossRankCounts(stopRanks: 2, at: 150, resumeRanks: [1, 4], total: 300,
                                                     ["--lambda", "1", "--log-every", "50", "--seed", "3"],
                                                     matching: whole, in: dir, launch: launch)
    }

    /// λ = 0 (no L1), and the sparse kernels forced, on 1, 2 and 4 ranks.
    func testWithoutL1AndOnTheSparseKernels() throws {
        try BitIdentity.assertRankCountsAgree([1, 2, 4], ["--lambda", "0", "--iterations", "300", "--log-every", "100"],
                                              in: dir.appendingPathComponent("lambda0"), launch: launch)
        try BitIdentity.assertRankCountsAgree([1, 2, 4], ["--lambda", "1", "--kernels", "sparse", "--iterations", "300", "--log-every", "100"],
                                              in: dir.appendingPathComponent("sparse"), launch: launch)
    }

    /// Without --deterministic the rank counts differ in the last bits (what the flag is for),
    /// and with it 3 ranks (which do not divide the 4 chunks) still reproduce themselves.
    func testTheFlagIsWhatMakesTheBitsAgree() throws {
        var checks: [Data] = []
        for ranks in [1, 2] {
            let out = dir.appendingPathComponent("fast\(ranks)")
            let r = try launch(ranks, ["train", "--quiet", "--lambda", "1", "--iterations", "200", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            checks.append(try Data(contentsOf: out.appendingPathComponent("W.npy")))
        }
        XCTAssertNotEqual(checks[0], checks[1], "the fast step's bits depend on the rank count")
        var three: [Data] = []
        for run in 0..<2 {
            let out = dir.appendingPathComponent("three\(run)")
            let r = try launch(3, ["train", "--deterministic", "--quiet", "--lambda", "1", "--iterations", "200", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            three.append(try Data(contentsOf: out.appendingPathComponent("W.npy")))
        }
        XCTAssertEqual(three[0], three[1], "3 ranks: the same bits run after run")
    }
}
