import AETrainCore
import Foundation
import XCTest

/// Checkpoints, resume across rank counts, preemption by signals, dead ranks, damaged
/// checkpoints. Stop-and-resume bit for bit on the same ranks, for every model, is in `EngineTests`.
final class FaultToleranceTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("ft") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let common = ["train", "--lambda", "1", "--iterations", "300", "--log-every", "50", "--checkpoint-every", "100"]

    /// A run stopped by SIGTERM on rank 0 of 2 after iteration 120 really stopped there (its
    /// message, its checkpoint at 121, its metrics up to 100) and, resumed on 1 and on 4 ranks,
    /// ends with the bytes of an uninterrupted 2-rank run: with `--deterministic`, which a
    /// resumed run keeps, the step is bit-for-bit the same on 1, 2 and 4 ranks. (3 ranks cut
    /// the batch into 3 chunks, not 4: the same bits run after run, not those of 2 ranks.)
    /// Without the flag, other rank counts agree to rounding only (`MultiRankTests`).
    func testResumeWithOtherRankCounts() throws {
        let deterministic = common + ["--deterministic", "--seed", "3", "--hidden", "100"]
        let whole = dir.appendingPathComponent("whole")
        let w = try Harness.mpirun(2, deterministic + ["--quiet", "--out", whole.path])
        XCTAssertEqual(w.status, 0, w.stderr)
        let stopped = dir.appendingPathComponent("stopped")
        let stop = try Harness.mpirun(2, deterministic + ["--out", stopped.path, "--debug-signal-rank", "0", "--debug-signal-at", "120"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("stopped on request (SIGTERM or SIGINT) before iteration 121"), stop.stdout)
        XCTAssertEqual(CheckpointFolder(run: stopped).files().map(\.lastPathComponent), ["step-000000121.ckpt", "step-000000100.ckpt"])
        XCTAssertEqual(try CheckpointFolder(run: stopped).newestValid().checkpoint.header.iteration, 121)
        XCTAssertEqual(try Harness.metrics(stopped).map { $0["iteration"] as? Int ?? -1 }, [0, 50, 100], "no line after the stop")
        for ranks in [1, 4] {
            let out = dir.appendingPathComponent("to\(ranks)")
            try FileManager.default.copyItem(at: stopped, to: out)
            let r = try Harness.mpirun(ranks, ["train", "--resume", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("resumed at iteration 121"), r.stdout)
            for name in ["V.npy", "W.npy", "b.npy", "a.npy", "activations.npy"] {
                XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(name)), try Data(contentsOf: whole.appendingPathComponent(name)),
                               "\(name): stopped on 2 ranks, resumed on \(ranks), differs from the uninterrupted run")
            }
            XCTAssertEqual(try Harness.metrics(out).map { $0["iteration"] as? Int ?? -1 }, [0, 50, 100, 150, 200, 250, 299])
        }
    }

    /// An external SIGTERM to one rank of a running job stops every rank with one checkpoint.
    /// What a second signal does (a second SIGINT exits at once; repeated SIGTERMs never do) is
    /// in `SignalTests`.
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
