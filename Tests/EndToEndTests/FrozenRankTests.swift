import AETrainCore
import Foundation
import XCTest

/// One rank frozen by a real SIGSTOP (the binary's test hook stops rank 1 on its N-th collective
/// call) in every multi-rank command: the job ends within the peer timeout plus a few seconds,
/// nonzero, with aetrain's one-line message and no crash trace.
final class FrozenRankTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("frozen") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let peerTimeout = 3.0
    /// Start-up, the wait for mpirun to end the stopped rank and a loaded 2-core machine.
    static let slack = 15.0

    /// Runs `mpirun -n RANKS aetrain ARGS --peer-timeout 3` with rank `frozen` stopped on
    /// entering its `call`-th collective, and checks how the job ended.
    @discardableResult
    func expectBoundedEnd(_ arguments: [String], freezeAt call: Int, ranks: Int = 2, frozen: Int = 1,
                          file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        // Every process of this job carries the marker, so that none is left behind stopped.
        let marker = UUID().uuidString
        defer { for pid in Harness.processes(withEnvironment: "AETRAIN_TEST_JOB", marker) { kill(pid, SIGKILL) } }
        let environment = ["AETRAIN_TEST_FREEZE_RANK": "\(frozen)", "AETRAIN_TEST_FREEZE_AT": "\(call)", "AETRAIN_TEST_JOB": marker]
        let started = Date()
        let r = try Harness.mpirun(ranks, arguments + ["--peer-timeout", "\(Int(Self.peerTimeout))"], timeout: 120,
                                   environment: environment, file: file, line: line)
        let seconds = Date().timeIntervalSince(started)
        print("\(ranks) ranks, rank \(frozen) frozen at collective \(call) of `\(arguments.prefix(3).joined(separator: " "))`: ended after \(String(format: "%.1f", seconds)) s")

        XCTAssertLessThan(seconds, Self.peerTimeout + Self.slack, "ended within the bound", file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "exit status", file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, "one error line: \(r.stderr)", file: file, line: line)
        let message = r.errorLines.first ?? ""
        XCTAssertTrue(message.hasPrefix("error: no progress for 3 s") && message.contains("--peer-timeout"), message, file: file, line: line)
        for crash in ["Fatal error", "Backtrace", "Stack dump"] {
            XCTAssertFalse(r.stderr.contains(crash), "no crash trace: \(r.stderr)", file: file, line: line)
        }
        // mpirun itself ends the stopped rank; a leftover after half a second is a failure (and
        // is killed above).
        let settled = Date().addingTimeInterval(0.5)
        while !Harness.processes(withEnvironment: "AETRAIN_TEST_JOB", marker).isEmpty, Date() < settled { usleep(20_000) }
        XCTAssertEqual(Harness.processes(withEnvironment: "AETRAIN_TEST_JOB", marker), [], "no process left behind", file: file, line: line)
        return r
    }

    /// A training run frozen after several checkpoints: the message names the checkpoints, and
    /// the newest one resumes in one process.
    func expectResumable(_ out: URL, _ r: Run, extra: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(r.stderr.contains("aetrain train --resume \(out.path)"), r.stderr, file: file, line: line)
        let newest = try CheckpointFolder(run: out).newestValid()
        XCTAssertTrue(newest.warnings.isEmpty, "\(newest.warnings)", file: file, line: line)
        let iteration = newest.checkpoint.header.iteration
        XCTAssertGreaterThan(iteration, 0, file: file, line: line)
        let resume = try Harness.aetrain(["train", "--quiet", "--resume", out.path, "--iterations", "\(iteration + extra)"])
        XCTAssertEqual(resume.status, 0, resume.stderr, file: file, line: line)
    }

    /// The sparse autoencoder (a few collectives a step: the rows' exchange, the column sums, the gradient's allreduce or two barriers).
    func testTrainEndsAndItsCheckpointResumes() throws {
        let out = dir.appendingPathComponent("sae")
        let r = try expectBoundedEnd(["train", "--quiet", "--checkpoint-every", "5", "--iterations", "100000", "--out", out.path],
                                     freezeAt: 60)
        try expectResumable(out, r, extra: 10)
    }

    /// Sparse coding (3 reductions an alternation, and a gather per checkpoint).
    func testSparseCodingEndsAndItsCheckpointResumes() throws {
        let out = dir.appendingPathComponent("sc")
        let r = try expectBoundedEnd(["train", "--model", "sparse-coding", "--quiet", "--hidden", "64", "--fista-steps", "10",
                                      "--checkpoint-every", "3", "--iterations", "1000", "--out", out.path], freezeAt: 60)
        try expectResumable(out, r, extra: 2)
    }

    func testTiedLinearEndsAndItsCheckpointResumes() throws {
        let out = dir.appendingPathComponent("tied")
        let r = try expectBoundedEnd(["train", "--model", "tied-linear", "--quiet", "--hidden", "16", "--checkpoint-every", "5",
                                      "--iterations", "100000", "--out", out.path], freezeAt: 30)
        try expectResumable(out, r, extra: 10)
    }

    /// Loading the data takes 6 collectives; the 8th is inside the covariance's reduction.
    func testPCAEnds() throws {
        try expectBoundedEnd(["pca", "--quiet", "--out", dir.appendingPathComponent("pca").path], freezeAt: 8)
    }

    /// At the very first collective (the data set's loading).
    func testFreezeAtStartUpEnds() throws {
        try expectBoundedEnd(["pca", "--quiet", "--out", dir.appendingPathComponent("pca1").path], freezeAt: 1)
    }

    /// Collective 3 is the gather of the decoded images, after every rank decoded its share.
    func testPrepareLFWEnds() throws {
        let tree = dir.appendingPathComponent("lfw")
        _ = try Harness.python("""
            import numpy as np, os
            from PIL import Image
            rng = np.random.default_rng(0)
            for person, n in {"Alice_Smith": 3, "Bob_Jones": 2}.items():
                os.makedirs(f"\(tree.path)/{person}", exist_ok=True)
                for k in range(1, n + 1):
                    img = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
                    Image.fromarray(img).save(f"\(tree.path)/{person}/{person}_{k:04d}.jpg", quality=90)
            """)
        try expectBoundedEnd(["prepare-lfw", tree.path, "--out", dir.appendingPathComponent("faces.npy").path], freezeAt: 3)
    }

    /// Rank 0 frozen: another rank reports (a few seconds later than rank 0 would).
    func testFrozenRankZeroEnds() throws {
        try expectBoundedEnd(["train", "--model", "tied-linear", "--quiet", "--hidden", "16", "--iterations", "100000",
                              "--out", dir.appendingPathComponent("tied0").path], freezeAt: 30, frozen: 0)
    }

    /// Rank 0 frozen at 4 ranks: ranks 1, 2 and 3 all time out, and rank 1 alone reports
    /// (each rank past 1 waits 2 s longer than the one before it, and mpirun ends them first).
    /// Without the stagger, 2 or 3 lines came in 2 of 3 tries with the sparse autoencoder.
    func testFrozenRankZeroAtFourRanksPrintsOneLine() throws {
        for k in 0..<3 {
            try expectBoundedEnd(["train", "--quiet", "--hidden", "16", "--iterations", "100000",
                                  "--out", dir.appendingPathComponent("sae40-\(k)").path], freezeAt: 30, ranks: 4, frozen: 0)
        }
    }

    /// Three ranks time out, one line is printed: rank 0's (mpirun ends the others first).
    func testFourRanksPrintOneLine() throws {
        try expectBoundedEnd(["train", "--model", "tied-linear", "--quiet", "--hidden", "16", "--iterations", "100000",
                              "--out", dir.appendingPathComponent("tied4").path], freezeAt: 30, ranks: 4, frozen: 2)
    }

    /// Frozen while the steps are being timed.
    func testBenchEnds() throws {
        try expectBoundedEnd(["bench", "--steps", "100000", "--warmup", "0", "--examples", "500", "--image-shape", "10x10"], freezeAt: 40)
    }

    /// Compare and report take the flag too (they only reduce to agree on errors).
    func testEveryMultiRankCommandTakesPeerTimeout() throws {
        for command in ["train", "pca", "prepare-lfw", "bench", "compare", "report"] {
            let help = try Harness.aetrain(["help", command])
            XCTAssertTrue(help.stdout.contains("--peer-timeout"), "\(command): \(help.stdout)")
        }
        let r = try Harness.aetrain(["pca", "--peer-timeout", "1e9"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--peer-timeout must be at most"), r.stderr)
    }
}
