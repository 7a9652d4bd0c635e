import AETrainCore
import Foundation
import XCTest

/// Signals as job managers send them: Slurm at a time limit sends SIGTERM, SIGCONT and SIGTERM
/// within a millisecond, and only its SIGKILL after the grace time is meant as "now". A second
/// SIGINT (Ctrl-C twice) still ends a process at once.
final class SignalTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("signals") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The model of the slow runs: steps of tens of milliseconds (d = 3600, h = 600, 1.3 GFLOP),
    /// so that a signal most likely arrives mid-step, and a stop (the step under way, a 50 MB
    /// checkpoint and the run's outputs) that takes far longer than the 30 ms between two signals.
    static let slowModel = ["--data", "synthetic:300,60,60", "--hidden", "600", "--iterations", "1000000", "--checkpoint-every", "0"]

    /// A lone process on `slowModel`.
    func slowRunArguments(_ out: URL) -> [String] {
        ["train"] + Self.slowModel + ["--log-every", "1", "--out", out.path]
    }

    func startSlowRun(_ out: URL) throws -> Job {
        let job = try Harness.start(Harness.aetrain, slowRunArguments(out))
        try job.waitFor(file: out.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
        return job
    }

    func testRepeatedTermsLikeSlurmStillCheckpointAndExitZero() throws {
        for ranks in [1, 2] {
            let out = dir.appendingPathComponent("term\(ranks)")
            let job: Job
            if ranks == 1 {
                job = try startSlowRun(out)
            } else {
                job = try Harness.start("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Harness.aetrain, "train", "--quiet"]
                                        + Self.slowModel + ["--out", out.path])
                try job.waitFor(file: out.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
            }
            let targets = ranks == 1 ? [job.pid] : Harness.children(of: job.pid)
            XCTAssertEqual(targets.count, ranks)
            let sent = Date()
            for pid in targets {
                kill(pid, SIGTERM)
                kill(pid, SIGCONT)
                kill(pid, SIGTERM)
            }
            let r = job.wait(timeout: 120)
            let latency = Date().timeIntervalSince(sent)  // the step under way, the checkpoint and the run's outputs
            XCTAssertEqual(r.status, 0, "\(ranks) ranks: \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("stopped on request"), r.stdout)
            XCTAssertEqual(CheckpointFolder(run: out).files().count, 1, "\(ranks) ranks: one checkpoint, written at the stop")
            print("SignalTests: \(ranks) rank(s) stopped \(String(format: "%.2f", latency)) s after SIGTERM, SIGCONT, SIGTERM")
        }
    }

    /// A SIGINT while a stop is under way, whether a SIGTERM or a first SIGINT (Ctrl-C twice)
    /// started it: the person at the terminal wants out now. The process exits at once with
    /// 128 + SIGINT, without waiting for the step boundary or writing a checkpoint. Both runs
    /// start together, so the test waits for one start-up, not two.
    func testSigintAfterTermOrSigintExitsAtOnce() throws {
        let firsts = [SIGTERM, SIGINT]
        var jobs: [(Job, URL)] = []
        for first in firsts {
            let out = dir.appendingPathComponent("first\(first)")
            jobs.append((try Harness.start(Harness.aetrain, slowRunArguments(out)), out))
        }
        for ((job, out), first) in zip(jobs, firsts) {
            try job.waitFor(file: out.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
            kill(job.pid, first)
            usleep(30_000)  // pending together, SIGINT (2) would be delivered before SIGTERM (15), or two SIGINTs merge into one
            kill(job.pid, SIGINT)
        }
        for ((job, out), first) in zip(jobs, firsts) {
            let r = job.wait(timeout: 30)
            XCTAssertEqual(r.status, 128 + SIGINT, "signal \(first) then SIGINT: \(r.stderr)")
            XCTAssertTrue(CheckpointFolder(run: out).files().isEmpty, "signal \(first) then SIGINT: no checkpoint was waited for")
        }
    }
}
