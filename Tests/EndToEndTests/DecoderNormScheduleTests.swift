import Foundation
import XCTest

/// `--decoder-norm unit` under mpirun in every gradient-sum mode, the schedules through a stop
/// and a resume, and the lines and metrics that come with them.
final class DecoderNormScheduleTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("decoder-norm") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The largest |‖w_j‖ − 1| over the rows of a run's W.npy, by numpy.
    func worstRowNorm(_ run: URL) throws -> Double {
        let r = try Harness.python("""
            import numpy as np
            W = np.load('\(run.path)/W.npy').astype(np.float64)
            print(np.abs(np.linalg.norm(W, axis=1) - 1).max())
            """)
        return Double(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
    }

    /// `--deterministic`: 1 and 2 ranks write the same bytes with unit-norm rows, whose norms
    /// numpy finds at 1.
    func testDeterministicUnitNormIsTheSameOnOneAndTwoRanks() throws {
        let whole = try BitIdentity.assertRankCountsAgree(
            [1, 2], ["--lambda", "1", "--decoder-norm", "unit", "--iterations", "120", "--log-every", "40", "--lr", "1e-3"],
            in: dir, launch: { ranks, arguments in try Harness.mpirun(ranks, arguments, timeout: 600) })
        XCTAssertLessThan(try worstRowNorm(whole), 1e-6)
    }

    /// Shared memory (two ranks, each owning whole rows of W: the sheet's cut would split a
    /// row) against the allreduce and the overlapped allreduce: unit rows in each, and the same
    /// bytes (two ranks' sums are MPI's to the bit, and each row is projected, updated and
    /// renormalized by the same code whichever rank owns it).
    func testSharedMemoryAndAllreduceKeepUnitRowsAlike() throws {
        var runs: [URL] = []
        for (name, flags) in [("shared", ["--gradient-sum", "shared-memory"]), ("allreduce", ["--gradient-sum", "allreduce"]),
                              ("overlap", ["--gradient-sum", "allreduce", "--overlap", "always"])] {
            let out = dir.appendingPathComponent(name)
            let r = try Harness.mpirun(2, ["train", "--quiet", "--lambda", "1", "--decoder-norm", "unit", "--iterations", "100",
                                           "--log-every", "50", "--lr", "1e-3", "--out", out.path] + flags)
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertLessThan(try worstRowNorm(out), 1e-6, name)
            runs.append(out)
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: runs[0].appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual((config?["execution"] as? [String: Any])?["sharedMemory"] as? Bool, true)
        XCTAssertEqual(((config?["settings"] as? [String: Any])?["architecture"] as? [String: Any])?["decoderNorm"] as? String, "unit")
        for other in runs.dropFirst() {
            for file in ["V.npy", "W.npy", "b.npy", "a.npy"] {
                XCTAssertEqual(try Data(contentsOf: runs[0].appendingPathComponent(file)), try Data(contentsOf: other.appendingPathComponent(file)),
                               "\(other.lastPathComponent): \(file)")
            }
        }
    }

    /// The three schedules and unit rows, stopped by SIGTERM on rank 1 and resumed: the same
    /// bytes and log lines as the uninterrupted run (the schedules are functions of the
    /// iteration). The current lr and λ are logged, in the table and metrics.jsonl.
    func testSchedulesResumeExactly() throws {
        let common = ["train", "--lambda", "1", "--decoder-norm", "unit", "--lr-warmup", "30", "--lr-decay", "0.4",
                      "--lambda-warmup", "50", "--iterations", "100", "--log-every", "10", "--checkpoint-every", "25"]
        let whole = dir.appendingPathComponent("whole")
        let w = try Harness.mpirun(2, common + ["--out", whole.path])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertTrue(w.stdout.contains("     lr       λ    comp"), w.stdout)
        let lines = try Harness.metrics(whole)
        XCTAssertEqual(lines.first?["lr"] as? Double ?? 0, 1e-4 / 30, accuracy: 1e-12)
        XCTAssertEqual(lines.first?["lambda"] as? Double ?? 0, 1.0 / 50, accuracy: 1e-12)
        XCTAssertEqual(lines.last?["lr"] as? Double ?? 0, 1e-4 / 40, accuracy: 1e-12, "iteration 99: the last of 40 decaying")
        XCTAssertEqual(lines.last?["lambda"] as? Double, 1)

        let out = dir.appendingPathComponent("stopped")
        let stop = try Harness.mpirun(2, common + ["--quiet", "--out", out.path, "--debug-signal-rank", "1", "--debug-signal-at", "57"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("stopped on request"), stop.stdout)
        let resume = try Harness.mpirun(2, ["train", "--quiet", "--resume", out.path])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        for file in ["V.npy", "W.npy", "b.npy", "a.npy"] {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(file)), try Data(contentsOf: whole.appendingPathComponent(file)), file)
        }
        let timing: Set<String> = ["seconds", "compute_seconds", "communication_seconds", "optimizer_seconds", "seconds_to_first_step"]
        func terms(_ run: URL) throws -> [[String: Double]] {
            try Harness.metrics(run).map { $0.compactMapValues { $0 as? Double }.filter { !timing.contains($0.key) } }
        }
        XCTAssertEqual(try terms(out), try terms(whole))

        // A changed schedule is another trajectory: refused on resume, in one line.
        let changed = try Harness.aetrain(["train", "--resume", out.path, "--lr-warmup", "10"])
        XCTAssertEqual(changed.status, 1)
        XCTAssertEqual(changed.errorLines.count, 1, changed.stderr)
        XCTAssertTrue(changed.stderr.contains("--lr-warmup 10 here, 30 in the checkpoint"), changed.stderr)

        // Extended: the decay moves to the new end, and the run says where.
        let extended = try Harness.aetrain(["train", "--quiet", "--resume", out.path, "--iterations", "150"])
        XCTAssertEqual(extended.status, 0, extended.stderr)
        XCTAssertTrue(extended.stderr.contains("warning: the learning rate decays over the last 0.4 of the iterations: with 150 iterations instead of 100, over iterations 90 … 149"), extended.stderr)
        XCTAssertEqual(try Harness.metrics(out).last?["lr"] as? Double ?? 0, 1e-4 / 60, accuracy: 1e-12)
    }

    /// Bad values and flags for a model that does not read them: one line, exit 64.
    func testBadScheduleValuesAreUsageErrors() throws {
        for (flags, message) in [
            (["--lr-decay", "1.5"], "--lr-decay is the fraction of the iterations the learning rate decays over, in [0, 1]; got 1.5"),
            (["--lr-decay", "nan"], "--lr-decay is the fraction of the iterations the learning rate decays over, in [0, 1]; got nan"),
            (["--lr-warmup=-3"], "--lr-warmup must be ≥ 0 iterations, got -3"),
            (["--lambda-warmup", "5"], "--lambda-warmup warms λ up, but λ is 0: give --lambda too"),
            (["--model", "tied-linear", "--lr-warmup", "5"], "--lr-warmup does not apply to the tied-linear model"),
            (["--decoder-norm", "sideways"], "sideways"),
        ] {
            let r = try Harness.aetrain(["train", "--out", path("bad")] + flags)
            XCTAssertEqual(r.status, 64, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(flags): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad")), "\(flags): nothing written")
        }
    }

    /// On vectors, relu with λ = 0 says in one line that it trains a dense autoencoder; not
    /// with λ > 0, nor on the faces. The data are not centred (`--normalize none`): the
    /// fraction of the squared norm explained is logged beside EV, and ent (ε = 0) is not shown.
    func testDenseAutoencoderLineAndTheSquaredNormColumn() throws {
        _ = try Harness.python("""
            import numpy as np
            rng = np.random.default_rng(0)
            np.save('\(path("vectors.npy"))', (5 + rng.normal(size=(120, 12))).astype(np.float32))
            """)
        let note = "with λ = 0 this trains a dense autoencoder"
        let common = ["train", "--data", path("vectors.npy"), "--hidden", "16", "--batch-size", "20", "--iterations", "20", "--log-every", "10"]
        let dense = try Harness.aetrain(common + ["--normalize", "none", "--eval-fraction", "0.2", "--out", path("dense")])
        XCTAssertEqual(dense.status, 0, dense.stderr)
        XCTAssertEqual(dense.stdout.components(separatedBy: "\n").filter { $0.contains(note) }.count, 1, dense.stdout)
        XCTAssertTrue(dense.stdout.contains("--lambda") && dense.stdout.contains("--activation topk"), dense.stdout)
        XCTAssertTrue(dense.stdout.contains("    spa      reg |"), "no ent column with ε = 0: \(dense.stdout)")
        XCTAssertTrue(dense.stdout.contains("     EV     ESN"), dense.stdout)
        XCTAssertTrue(dense.stdout.contains("e.EV    e.ESN"), dense.stdout)
        for line in try Harness.metrics(URL(fileURLWithPath: path("dense"))) {
            let ev = line["explained_variance"] as? Double ?? 9, esn = line["explained_squared_norm"] as? Double ?? -9
            XCTAssertLessThan(ev, esn, "data far from 0: the squared norm is easier to explain than the variance")
            XCTAssertNotNil(line["eval_explained_squared_norm"])
        }
        let sparse = try Harness.aetrain(common + ["--lambda", "1", "--out", path("sparse")])
        XCTAssertEqual(sparse.status, 0, sparse.stderr)
        XCTAssertFalse(sparse.stdout.contains(note), sparse.stdout)
        XCTAssertFalse(sparse.stdout.contains("ESN"), "centred by default: no squared-norm column")
        let faces = try Harness.aetrain(["train", "--iterations", "3", "--out", path("faces")])
        XCTAssertEqual(faces.status, 0, faces.stderr)
        XCTAssertFalse(faces.stdout.contains(note), faces.stdout)
    }
}
