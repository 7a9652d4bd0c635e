import AETrainCore
import Foundation
import XCTest

/// The run engine with every model, through the binary: each runs on its own defaults,
/// writes periodic checkpoints, stops on SIGTERM to one rank with a checkpoint (saying how to
/// continue), and resumes bit-for-bit onto the uninterrupted trajectory; PCA runs as a one-shot.
final class EngineTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("engine") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    struct Case {
        var model: String
        var flags: [String]
        /// Iterations, and the one after which rank 1 receives SIGTERM.
        var iterations: Int, signalAt: Int
        /// The files that must be equal byte for byte.
        var weights: [String]
        /// The iteration the run stops before: the next boundary, or the iteration under way
        /// for a model that abandons it (sparse coding's FISTA loop listens for stops).
        var stopsBefore: Int
    }

    let cases = [
        Case(model: "sparse-autoencoder", flags: ["--lambda", "1", "--hidden", "64"], iterations: 80, signalAt: 37,
             weights: ["V.npy", "W.npy", "b.npy", "a.npy"], stopsBefore: 38),
        Case(model: "sparse-coding", flags: ["--hidden", "32", "--fista-steps", "20"], iterations: 8, signalAt: 3,
             weights: ["dictionary.npy", "activations.npy"], stopsBefore: 3),
        Case(model: "tied-linear", flags: ["--hidden", "8"], iterations: 80, signalAt: 37, weights: ["W.npy", "activations.npy"],
             stopsBefore: 38),
    ]

    /// The terms each line logged, without the timings (which differ between runs).
    func terms(_ run: URL) throws -> [[String: Double]] {
        let timing: Set<String> = ["seconds", "compute_seconds", "communication_seconds", "optimizer_seconds", "seconds_to_first_step"]
        return try Harness.metrics(run).map { line in
            line.compactMapValues { $0 as? Double }.filter { !timing.contains($0.key) }
        }
    }

    func testEveryModelCheckpointsStopsOnOneRankAndResumesExactly() throws {
        for c in cases {
            let common = ["train", "--model", c.model, "--iterations", "\(c.iterations)", "--log-every", "5",
                          "--checkpoint-every", "10"] + c.flags
            let whole = dir.appendingPathComponent("\(c.model)-whole")
            let w = try Harness.mpirun(2, common + ["--quiet", "--out", whole.path])
            XCTAssertEqual(w.status, 0, "\(c.model): \(w.stderr)")
            XCTAssertFalse(CheckpointFolder(run: whole).files().isEmpty, "\(c.model) writes checkpoints")

            // SIGTERM to rank 1 alone: every rank stops at the next iteration boundary.
            let out = dir.appendingPathComponent("\(c.model)-stopped")
            let stop = try Harness.mpirun(2, common + ["--out", out.path, "--debug-signal-rank", "1", "--debug-signal-at", "\(c.signalAt)"])
            XCTAssertEqual(stop.status, 0, "\(c.model): \(stop.stderr)")
            let stoppedAt = c.stopsBefore
            XCTAssertTrue(stop.stdout.contains("stopped on request (SIGTERM or SIGINT) before iteration \(stoppedAt)"), "\(c.model): \(stop.stdout)")
            XCTAssertTrue(stop.stdout.contains("continue with: aetrain train --resume \(out.path)"), "\(c.model): \(stop.stdout)")
            // The checkpoint written at the stop, then the periodic ones (every 10) before it:
            // the newest 3 (--keep-checkpoints' default).
            let folder = CheckpointFolder(run: out)
            let kept = Array(([stoppedAt] + stride(from: (stoppedAt - 1) / 10 * 10, to: 0, by: -10)).prefix(3))
            XCTAssertEqual(folder.files(), kept.map { folder.file(iteration: $0) }, c.model)
            let newest = try CheckpointFolder(run: out).newestValid()
            XCTAssertEqual(newest.checkpoint.header.iteration, stoppedAt)
            XCTAssertEqual(newest.checkpoint.header.model?.rawValue, c.model)

            // Resumed with no other flag: the model, settings and data come from the run directory.
            let resume = try Harness.mpirun(2, ["train", "--resume", out.path])
            XCTAssertEqual(resume.status, 0, "\(c.model): \(resume.stderr)")
            XCTAssertTrue(resume.stdout.contains("resumed at iteration \(stoppedAt)"), resume.stdout)
            for file in c.weights {
                XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(file)), try Data(contentsOf: whole.appendingPathComponent(file)),
                               "\(c.model): \(file) bit-for-bit equal to the uninterrupted run")
            }
            XCTAssertEqual(try terms(out), try terms(whole), "\(c.model): the same log lines, without gaps or repeats")
            let logged = Array(stride(from: 0, to: c.iterations, by: 5)) + ((c.iterations - 1) % 5 == 0 ? [] : [c.iterations - 1])
            XCTAssertEqual(try Harness.metrics(out).map { $0["iteration"] as? Int ?? -1 }, logged, "\(c.model): every log line once")

            // Another model cannot continue it.
            let other = c.model == "tied-linear" ? "sparse-coding" : "tied-linear"
            let wrong = try Harness.aetrain(["train", "--model", other, "--resume", out.path])
            XCTAssertEqual(wrong.status, 1)
            XCTAssertEqual(wrong.errorLines.count, 1, wrong.stderr)
            XCTAssertTrue(wrong.stderr.contains("cannot continue as \(other)"), wrong.stderr)
        }
    }

    /// `aetrain train --model M --data D --out DIR` runs every model to its own default number
    /// of iterations with no other flag, and each logs only what it measures. The defaults are
    /// stated here, not read from the code: the sheet's 10,001 steps for the sparse
    /// autoencoder, 30 alternations for sparse coding, 5001 steps for the tied linear model
    /// (k = 64), one pass for PCA (64 components). Each runs on a small synthetic dataset its
    /// defaults accept (batch 100 needs 100 examples; k = 64 needs d ≥ 64), so that the
    /// full default schedules take seconds.
    func testEveryModelRunsOnItsOwnDefaults() throws {
        struct Expected {
            var model: String, data: String, iterations: Int
            var keys: Set<String>, files: [String]
        }
        let expected = [
            Expected(model: "sparse-autoencoder", data: "synthetic:100,2,2", iterations: 10001,
                     keys: ["rec", "spa", "ent", "reg", "loss", "l0", "explained_variance", "dead_units"], files: ["V.npy", "W.npy", "b.npy", "a.npy"]),
            Expected(model: "sparse-coding", data: "synthetic:20,2,2", iterations: 30,
                     keys: ["rec", "spa", "reg", "loss", "l0", "explained_variance"], files: ["dictionary.npy"]),
            Expected(model: "tied-linear", data: "synthetic:100,8,8", iterations: 5001,
                     keys: ["rec", "loss", "explained_variance", "optimizer_seconds"], files: ["W.npy", "subspace_cosines.npy"]),
            Expected(model: "pca", data: "synthetic:100,8,8", iterations: 1,
                     keys: ["rec", "loss", "explained_variance"], files: ["components.npy", "explained_variance.npy"]),
        ]
        for e in expected {
            let model = e.model
            let out = dir.appendingPathComponent(model)
            let r = try Harness.aetrain(["train", "--model", model, "--data", e.data, "--out", out.path])
            XCTAssertEqual(r.status, 0, "\(model): \(r.stderr)")
            let lines = try Harness.metrics(out)
            XCTAssertFalse(lines.isEmpty)
            XCTAssertEqual(lines.last?["iteration"] as? Int, e.iterations - 1, "\(model) ran its default \(e.iterations) iterations")
            for line in lines {
                XCTAssertTrue(e.keys.isSubset(of: Set(line.keys)), "\(model) measures \(e.keys): \(line.keys)")
                if model != "sparse-autoencoder" {
                    XCTAssertNil(line["ent"], "\(model) has no entropy term")
                    XCTAssertNil(line["dead_units"], "\(model) does not count dead units")
                }
                for (key, value) in line { if let v = value as? Double { XCTAssertTrue(v.isFinite, "\(model) \(key)") } }
            }
            if model == "sparse-coding" { XCTAssertGreaterThan(lines.last?["compute_seconds"] as? Double ?? 0, 0, "a measured time") }
            for file in e.files + ["activations.npy", "mean.npy", "filters.png", "config.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(model): \(file)")
            }
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
            XCTAssertEqual(config?["model"] as? String, model)
            XCTAssertEqual((config?["settings"] as? [String: Any])?["iterations"] as? Int, e.iterations, "\(model): its default in config.json")
        }
    }

    /// PCA is a one-shot model of the same engine: one log line, no checkpoints.
    func testPCAIsOneShot() throws {
        let out = dir.appendingPathComponent("pca")
        let r = try Harness.mpirun(2, ["pca", "--components", "16", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try Harness.metrics(out)
        XCTAssertEqual(lines.count, 1)
        let ev = lines[0]["explained_variance"] as? Double ?? -1
        XCTAssertGreaterThan(ev, 0.5)
        XCTAssertLessThan(ev, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoints").path))
        XCTAssertTrue(r.stdout.contains("total variance"), r.stdout)
        let bad = try Harness.aetrain(["pca", "--components", "0"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--components must be positive"), bad.stderr)
    }

    /// Flags a model does not read are refused with a usage error that names the flag.
    func testFlagsAModelDoesNotReadAreRefused() throws {
        let r = try Harness.aetrain(["train", "--model", "tied-linear", "--lambda", "1"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--lambda does not apply to the tied-linear model"), r.stderr)
        let lr = try Harness.aetrain(["train", "--lr=-1"])
        XCTAssertEqual(lr.status, 64)
        XCTAssertTrue(lr.stderr.contains("--lr must be positive"), lr.stderr)
    }
}
