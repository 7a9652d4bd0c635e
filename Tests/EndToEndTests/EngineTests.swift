import AETrainCore
import Foundation
import XCTest

/// The run engine with every model, through the binary: each runs on its own defaults,
/// writes periodic checkpoints, stops on SIGTERM to one rank with a checkpoint, and resumes
/// bit-for-bit onto the uninterrupted trajectory; PCA runs as a one-shot.
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

            // Another model cannot continue it.
            let other = c.model == "tied-linear" ? "sparse-coding" : "tied-linear"
            let wrong = try Harness.aetrain(["train", "--model", other, "--resume", out.path])
            XCTAssertEqual(wrong.status, 1)
            XCTAssertEqual(wrong.errorLines.count, 1, wrong.stderr)
            XCTAssertTrue(wrong.stderr.contains("cannot continue as \(other)"), wrong.stderr)
        }
    }

    /// `aetrain train --model M --out DIR` works for every model with no other flag, and each
    /// logs only what it measures.
    func testEveryModelRunsOnItsOwnDefaults() throws {
        let expected: [(String, Set<String>, [String])] = [
            ("sparse-coding", ["rec", "spa", "reg", "loss", "l0", "explained_variance"], ["dictionary.npy"]),
            ("tied-linear", ["rec", "loss", "explained_variance", "optimizer_seconds"], ["W.npy", "subspace_cosines.npy"]),
        ]
        for (model, keys, files) in expected {
            let out = dir.appendingPathComponent(model)
            var args = ["train", "--model", model, "--out", out.path]
            if model == "tied-linear" { args += ["--iterations", "300"] }   // its default 5001 is long for a test
            if model == "sparse-coding" { args += ["--iterations", "3"] }
            let r = try Harness.aetrain(args)
            XCTAssertEqual(r.status, 0, "\(model): \(r.stderr)")
            let lines = try Harness.metrics(out)
            XCTAssertFalse(lines.isEmpty)
            for line in lines {
                XCTAssertTrue(keys.isSubset(of: Set(line.keys)), "\(model) measures \(keys): \(line.keys)")
                XCTAssertNil(line["ent"], "\(model) has no entropy term")
                XCTAssertNil(line["dead_units"], "\(model) does not count dead units")
                for (key, value) in line { if let v = value as? Double { XCTAssertTrue(v.isFinite, "\(model) \(key)") } }
            }
            if model == "sparse-coding" { XCTAssertGreaterThan(lines.last?["compute_seconds"] as? Double ?? 0, 0, "a measured time") }
            for file in files + ["activations.npy", "mean.npy", "filters.png", "config.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(model): \(file)")
            }
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
            XCTAssertEqual(config?["model"] as? String, model)
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
