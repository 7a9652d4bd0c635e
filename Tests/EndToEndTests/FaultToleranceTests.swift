import AETrainCore
import Foundation
import XCTest

/// Checkpoints, exact resume, preemption by signals, dead ranks, damaged checkpoints.
final class FaultToleranceTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("ft") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let common = ["train", "--lambda", "1", "--iterations", "300", "--log-every", "50", "--checkpoint-every", "100"]

    func weightsEqual(_ a: URL, _ b: URL) throws -> Bool {
        try ["V.npy", "W.npy", "b.npy", "a.npy"].allSatisfy {
            try Data(contentsOf: a.appendingPathComponent($0)) == Data(contentsOf: b.appendingPathComponent($0))
        }
    }

    func uninterrupted(ranks: Int) throws -> URL {
        let out = dir.appendingPathComponent("whole\(ranks)")
        let r = try Harness.mpirun(ranks, common + ["--quiet", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    /// SIGTERM reaches rank 1 alone after iteration 149 (a real signal through the real handler):
    /// every rank stops at the same step boundary, rank 0 writes a checkpoint, the job exits 0
    /// saying how to resume; the resumed run ends bit-for-bit equal to an uninterrupted one.
    func testSignalOnOneRankThenExactResume() throws {
        let whole = try uninterrupted(ranks: 2)
        let out = dir.appendingPathComponent("stopped")
        let stop = try Harness.mpirun(2, common + ["--out", out.path, "--debug-signal-rank", "1", "--debug-signal-at", "150"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("stopped on request (SIGTERM or SIGINT) before iteration 151"), stop.stdout)
        XCTAssertTrue(stop.stdout.contains("continue with: aetrain train --resume \(out.path)"), stop.stdout)
        XCTAssertEqual(CheckpointFolder(run: out).files().map(\.lastPathComponent), ["step-000000151.ckpt", "step-000000100.ckpt"])

        let resume = try Harness.mpirun(2, ["train", "--resume", out.path])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertTrue(resume.stdout.contains("resumed at iteration 151"), resume.stdout)
        XCTAssertTrue(try weightsEqual(whole, out), "bit-for-bit equal to the uninterrupted run")
        let iterations = try Harness.metrics(out).map { $0["iteration"] as? Int ?? -1 }
        XCTAssertEqual(iterations, [0, 50, 100, 150, 200, 250, 299], "metrics continue without gaps or repeats")
    }

    /// A run stopped with 2 ranks resumes with 1 and with 3 on the same trajectory, up to rounding.
    func testResumeWithOtherRankCounts() throws {
        let whole = try uninterrupted(ranks: 2)
        for ranks in [1, 3] {
            let out = dir.appendingPathComponent("to\(ranks)")
            XCTAssertEqual(try Harness.mpirun(2, common + ["--quiet", "--out", out.path, "--debug-signal-rank", "0", "--debug-signal-at", "120"]).status, 0)
            let r = try Harness.mpirun(ranks, ["train", "--quiet", "--resume", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertLessThan(try Harness.relativeDifference(whole, out), 0.02, "\(ranks) ranks")
        }
    }

    /// An external SIGTERM to one rank of a running job; then a second SIGINT (Ctrl-C twice) to a lone
    /// process exits at once. Repeated SIGTERMs never do (`SignalTests`).
    func testExternalSignals() throws {
        let out = dir.appendingPathComponent("external")
        let job = try Harness.start("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Harness.aetrain, "train", "--quiet", "--iterations", "1000000",
                                                       "--checkpoint-every", "0", "--out", out.path])
        try job.waitFor(file: out.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
        let ranks = Harness.children(of: job.pid)
        XCTAssertEqual(ranks.count, 2, "two rank processes under mpirun")
        kill(ranks[1], SIGTERM)
        let r = job.wait(timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("stopped on request"), r.stdout)
        XCTAssertEqual(CheckpointFolder(run: out).files().count, 1)

        // Two SIGINTs in a row to one process: the second does not wait for the step boundary.
        let lone = try Harness.start(Harness.aetrain, ["train", "--quiet", "--data", "synthetic:2000,60,60", "--hidden", "3000",
                                                      "--iterations", "1000000", "--out", dir.appendingPathComponent("lone").path])
        try lone.waitFor(file: dir.appendingPathComponent("lone/metrics.jsonl"), nonEmpty: true, timeout: 60)
        // A step here takes well over 30 ms; two signals sent back to back could merge into one.
        kill(lone.pid, SIGINT)
        usleep(30_000)
        kill(lone.pid, SIGINT)
        let second = lone.wait(timeout: 30)
        XCTAssertEqual(second.status, 128 + SIGINT, "exit status of the second signal")
        XCTAssertTrue(CheckpointFolder(run: dir.appendingPathComponent("lone")).files().isEmpty, "no checkpoint was waited for")
    }

    /// SIGKILL of one rank ends the whole job quickly; the last checkpoint stays valid and resuming completes.
    func testKilledRankEndsTheJobAndResumeCompletes() throws {
        let out = dir.appendingPathComponent("killed")
        let job = try Harness.start("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Harness.aetrain, "train", "--quiet", "--lambda", "1",
                                                       "--iterations", "400000", "--checkpoint-every", "200", "--out", out.path])
        try job.waitFor(file: CheckpointFolder(run: out).file(iteration: 400), nonEmpty: true, timeout: 120)
        let started = Date()
        let ranks = Harness.children(of: job.pid)
        XCTAssertEqual(ranks.count, 2)
        kill(ranks[1], SIGKILL)
        let r = job.wait(timeout: 90)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "the job ends within the bound")
        let newest = try CheckpointFolder(run: out).newestValid()
        XCTAssertTrue(newest.warnings.isEmpty, "\(newest.warnings)")
        let resume = try Harness.mpirun(2, ["train", "--quiet", "--resume", out.path, "--iterations", "\(newest.checkpoint.header.iteration + 100)"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertNoThrow(try ModelWeights.load(from: out))
    }

    /// A torn newest checkpoint is detected by its checksum; the previous one is used, with a warning.
    func testDamagedNewestCheckpointFallsBackWithAWarning() throws {
        let out = dir.appendingPathComponent("damaged")
        XCTAssertEqual(try Harness.aetrain(common + ["--quiet", "--out", out.path, "--iterations", "250"]).status, 0)
        let files = CheckpointFolder(run: out).files()
        XCTAssertEqual(files.map(\.lastPathComponent), ["step-000000250.ckpt", "step-000000200.ckpt", "step-000000100.ckpt"])
        var bytes = try Data(contentsOf: files[0])
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: files[0])
        // Torn: the second newest loses its tail.
        let r = try Harness.aetrain(["train", "--resume", out.path, "--iterations", "300"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(files[0].path): damaged checkpoint (checksum mismatch); trying an older one"), r.stderr)
        XCTAssertTrue(r.stdout.contains("resumed at iteration 200"), r.stdout)

        let truncated = dir.appendingPathComponent("torn")
        XCTAssertEqual(try Harness.aetrain(common + ["--quiet", "--out", truncated.path, "--iterations", "150"]).status, 0)
        let torn = CheckpointFolder(run: truncated).files()[0]
        try Data(try Data(contentsOf: torn).prefix(5000)).write(to: torn)
        let t = try Harness.aetrain(["train", "--quiet", "--resume", truncated.path])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stderr.contains("damaged checkpoint"), t.stderr)
    }

    func testResumeRefusesOtherSettingsOrData() throws {
        let out = dir.appendingPathComponent("mismatch")
        XCTAssertEqual(try Harness.aetrain(common + ["--quiet", "--out", out.path, "--iterations", "100"]).status, 0)
        let lambda = try Harness.aetrain(["train", "--resume", out.path, "--lambda", "0.5"])
        XCTAssertEqual(lambda.status, 1)
        XCTAssertEqual(lambda.errorLines.count, 1, lambda.stderr)
        XCTAssertTrue(lambda.stderr.contains("other settings (--lambda 0.5 here, 1.0 in the checkpoint)"), lambda.stderr)
        let data = try Harness.aetrain(["train", "--resume", out.path, "--data", "synthetic:100,25,25"])
        XCTAssertEqual(data.status, 1)
        XCTAssertTrue(data.stderr.contains("was written for other data"), data.stderr)
        XCTAssertEqual(try Harness.metrics(out).count, 3, "the run's files are untouched")
    }

    func testDivergenceKeepsTheLastGoodCheckpoint() throws {
        let out = dir.appendingPathComponent("diverge")
        let r = try Harness.aetrain(["train", "--out", out.path, "--lr", "1e30", "--iterations", "50", "--checkpoint-every", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("the last good checkpoint is \(out.path)/checkpoints/step-"), r.stderr)
        let newest = try CheckpointFolder(run: out).newestValid()
        guard case .f32(let parameters) = try newest.checkpoint.section("parameters", path: "newest") else { return XCTFail("no float32 parameters") }
        XCTAssertTrue(parameters.allSatisfy(\.isFinite))
    }
}
