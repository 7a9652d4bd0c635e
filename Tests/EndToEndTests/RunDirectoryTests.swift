import AETrainCore
import Foundation
import XCTest

/// A run directory belongs to one run: a new run does not mix with an old one, two runs at
/// once do not share a directory, resume loads only its own run's checkpoints, outputs never
/// overwrite inputs, and a long inner loop still stops in bounded time.
final class RunDirectoryTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("rundir") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func snapshot(_ run: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: run.path) where name != ".lock" {
            var isDir: ObjCBool = false
            let url = run.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue { files[name] = try Data(contentsOf: url) }
            else { files[name] = Data(try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().joined(separator: ",").utf8) }
        }
        return files
    }

    /// A new run into an old run's directory is refused and changes nothing; --overwrite
    /// removes the old run first, so every checkpoint and file is the new run's.
    func testANewRunDoesNotMixWithAnOldOne() throws {
        let run = dir.appendingPathComponent("R")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "300", "--checkpoint-every", "100", "--out", run.path]).status, 0)
        let before = try snapshot(run)
        let refused = try Harness.aetrain(["train", "--lambda", "1", "--iterations", "30", "--out", run.path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
        let line = refused.errorLines.first ?? ""
        XCTAssertTrue(line.hasPrefix("error: --out \(run.path) holds a run (sparse-autoencoder, 300 iterations, started 20"), line)
        XCTAssertTrue(line.hasSuffix("); continue it with --resume \(run.path) or start over with --overwrite"), line)
        XCTAssertEqual(try snapshot(run), before, "nothing in the old run changed")

        // --overwrite removes aetrain's files only: a file of the user's in checkpoints/ stays.
        try Data("mine".utf8).write(to: run.appendingPathComponent("checkpoints/notes.txt"))
        let again = try Harness.aetrain(["train", "--lambda", "1", "--iterations", "30", "--checkpoint-every", "10", "--overwrite", "--out", run.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        let runID = config?["runID"] as? String
        XCTAssertNotNil(runID)
        let files = CheckpointFolder(run: run).files()
        XCTAssertEqual(files.map(\.lastPathComponent), ["step-000000030.ckpt", "step-000000020.ckpt", "step-000000010.ckpt"])
        XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("checkpoints/notes.txt"), encoding: .utf8), "mine")

        // Resuming into another directory that holds a run is refused like a new run.
        let other = dir.appendingPathComponent("other")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "5", "--out", other.path]).status, 0)
        let into = try Harness.aetrain(["train", "--resume", run.path, "--iterations", "40", "--out", other.path])
        XCTAssertEqual(into.status, 1)
        XCTAssertTrue(into.stderr.contains("--out \(other.path) holds a run"), into.stderr)
        for file in files {
            XCTAssertEqual(try Checkpoint.decode(Data(contentsOf: file), path: file.path).header.runID, runID, "every checkpoint is the new run's")
        }
        XCTAssertEqual(try Harness.metrics(run).map { $0["iteration"] as? Int ?? -1 }, [0, 29])
    }

    /// Two runs into one directory at once: the second stops at once, naming the first's pid.
    /// A killed run's temporary files (`.NAME.tmp-PID` of aetrain's files) are removed when the
    /// run resumes; a refused run removes nothing, and names of the user's that look alike stay.
    func testResumeRemovesAKilledRunsTemporaryFiles() throws {
        let run = dir.appendingPathComponent("R")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "20", "--checkpoint-every", "10", "--out", run.path]).status, 0)
        let leftovers = [".dataset.png.tmp-4242", ".metrics.jsonl.tmp-17", "checkpoints/.step-000000030.ckpt.tmp-4242"]
        let kept = [".notes.txt.tmp-4242", "checkpoints/.mine.tmp-1", ".dataset.png.tmp-x", ".tmp-5"]
        for name in leftovers + kept { try Data("x".utf8).write(to: run.appendingPathComponent(name)) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: run.appendingPathComponent(name).path) }

        let refused = try Harness.aetrain(["train", "--iterations", "30", "--out", run.path])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        for name in leftovers + kept { XCTAssertTrue(exists(name), "a refused run removed \(name)") }

        let resumed = try Harness.aetrain(["train", "--quiet", "--resume", run.path, "--iterations", "30"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        for name in leftovers { XCTAssertFalse(exists(name), "\(name) left behind") }
        for name in kept { XCTAssertTrue(exists(name), "\(name) is not aetrain's, yet it was removed") }
        XCTAssertEqual(try Harness.metrics(run).last?["iteration"] as? Int, 29)
    }

    /// A `--tensorboard` or `--trace` that cannot be written is refused before anything is
    /// written: no half-created run blocks the retry, and the tree is as it was.
    func testUnwritableOutputsAreRefusedBeforeTheRunStarts() throws {
        let file = dir.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let out = dir.appendingPathComponent("R")
        let cases: [(flag: String, path: String, fragment: String)] = [
            ("--tensorboard", file.path, "exists and is not a directory"),
            ("--tensorboard", "/dev/null", "exists and is not a directory"),
            ("--tensorboard", "/proc/self", "cannot write into it"),
            ("--tensorboard", "/proc/self/tb", "cannot create it in /proc/self"),
            ("--tensorboard", file.appendingPathComponent("tb").path, "is not a directory"),
            ("--trace", dir.path, "exists and is not a regular file"),
            ("--trace", "/proc/self/trace.json", "cannot write into /proc/self"),
            ("--trace", dir.appendingPathComponent("missing/trace.json").path, "does not exist"),
        ]
        func tree() throws -> [String] { try FileManager.default.subpathsOfDirectory(atPath: dir.path).sorted() }
        let before = try tree()
        for c in cases {
            let r = try Harness.aetrain(["train", "--iterations", "5", c.flag, c.path, "--out", out.path])
            XCTAssertEqual(r.status, 1, "\(c.flag) \(c.path): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(c.flag) && r.stderr.contains(c.fragment), "\(c.flag) \(c.path): \(r.stderr)")
            XCTAssertEqual(try tree(), before, "\(c.flag) \(c.path) left something behind")
        }
        let retry = try Harness.aetrain(["train", "--quiet", "--iterations", "5", "--tensorboard", dir.appendingPathComponent("tb").path,
                                         "--out", out.path])
        XCTAssertEqual(retry.status, 0, retry.stderr)
    }

    func testTwoRunsAtOnceDoNotShareADirectory() throws {
        let run = dir.appendingPathComponent("busy")
        let first = try Harness.start(Harness.aetrain, ["train", "--quiet", "--iterations", "1000000", "--checkpoint-every", "0", "--out", run.path])
        defer { kill(first.pid, SIGKILL); _ = first.wait(timeout: 10) }
        try first.waitFor(file: run.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
        for _ in 0..<3 {
            let second = try Harness.mpirun(2, ["train", "--quiet", "--iterations", "30", "--overwrite", "--out", run.path])
            XCTAssertEqual(second.status, 1)
            XCTAssertEqual(second.errorLines, ["error: --out \(run.path) is in use by another aetrain run (pid \(first.pid)); "
                                               + "wait for it to end or choose another directory"], second.stderr)
        }
        kill(first.pid, SIGTERM)
        let r = first.wait(timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(CheckpointFolder(run: run).files().count, 1, "the first run's stop checkpoint")
    }

    /// A checkpoint of another run dropped into a run's folder is never loaded, even as the newest.
    func testResumeLoadsOnlyItsOwnRunsCheckpoints() throws {
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        for run in [a, b] {
            XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "40", "--checkpoint-every", "10", "--out", run.path]).status, 0)
        }
        let stranger = CheckpointFolder(run: b).files()[0]
        try FileManager.default.copyItem(at: stranger, to: CheckpointFolder(run: a).url.appendingPathComponent("step-000000900.ckpt"))
        let r = try Harness.aetrain(["train", "--resume", a.path, "--iterations", "60", "--checkpoint-every", "10", "--keep-checkpoints", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("belongs to another run"), r.stderr)
        XCTAssertTrue(r.stdout.contains("resumed at iteration 40 from \(a.path)/checkpoints/step-000000040.ckpt"), r.stdout)
        // Pruning keeps the run's own newest two; the stranger (a higher step) is neither
        // pruned nor counted, so it cannot push out the run's newest checkpoint.
        XCTAssertEqual(CheckpointFolder(run: a).files().map(\.lastPathComponent),
                       ["step-000000900.ckpt", "step-000000060.ckpt", "step-000000050.ckpt"])
        let again = try Harness.aetrain(["train", "--resume", a.path, "--iterations", "70"])
        XCTAssertTrue(again.stdout.contains("resumed at iteration 60 from \(a.path)/checkpoints/step-000000060.ckpt"), again.stdout)
    }

    /// Checkpoints are ordered by step number, past 10⁹ steps too.
    func testCheckpointsAreOrderedByStepNumber() throws {
        let folder = CheckpointFolder(run: dir)
        try FileManager.default.createDirectory(at: folder.url, withIntermediateDirectories: true)
        for step in [999_999_999, 1_000_000_000, 2, 12_345_678_901] {
            FileManager.default.createFile(atPath: folder.file(iteration: step).path, contents: Data())
        }
        XCTAssertEqual(folder.files().map(\.lastPathComponent),
                       ["step-12345678901.ckpt", "step-1000000000.ckpt", "step-999999999.ckpt", "step-000000002.ckpt"])
    }

    /// `--out` may not be the data, hold the data, lie inside an LFW tree or be the --init weights.
    func testOutputsNeverOverwriteInputs() throws {
        let data = dir.appendingPathComponent("D")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let faces = try Harness.python("""
            import numpy as np
            np.save("\(data.path)/faces.npy", np.random.default_rng(0).random((120, 5, 5), dtype=np.float32))
            """)
        XCTAssertEqual(faces.status, 0)
        let npy = data.appendingPathComponent("faces.npy")
        let original = try Data(contentsOf: npy)
        let holds = try Harness.aetrain(["train", "--data", npy.path, "--out", data.path, "--iterations", "5"])
        XCTAssertEqual(holds.status, 1)
        XCTAssertEqual(holds.errorLines, ["error: --out \(data.path) holds the input \(npy.path); write the outputs elsewhere"], holds.stderr)
        let same = try Harness.aetrain(["train", "--data", npy.path, "--out", npy.path, "--iterations", "5"])
        XCTAssertEqual(same.status, 1)
        XCTAssertTrue(same.stderr.contains("is the input"), same.stderr)
        let inside = try Harness.aetrain(["train", "--data", data.path + "/../D/faces.npy", "--out", data.appendingPathComponent("faces.npy/x").path])
        XCTAssertEqual(inside.status, 1, inside.stderr)
        XCTAssertEqual(try Data(contentsOf: npy), original, "the data is untouched")

        let weights = dir.appendingPathComponent("W")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "5", "--out", weights.path]).status, 0)
        let initOut = try Harness.aetrain(["train", "--init", weights.path, "--out", weights.path, "--iterations", "5", "--overwrite"])
        XCTAssertEqual(initOut.status, 1)
        XCTAssertTrue(initOut.stderr.contains("is the input \(weights.path)"), initOut.stderr)
    }

    /// report, compare and prepare-lfw never write over what they read, nor over each other.
    func testReportCompareAndPrepareNeverOverwriteInputs() throws {
        let run = dir.appendingPathComponent("R")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "5", "--out", run.path]).status, 0)
        let config = try Data(contentsOf: run.appendingPathComponent("config.json"))
        let report = try Harness.aetrain(["report", run.path, "--out", run.appendingPathComponent("config.json").path])
        XCTAssertEqual(report.status, 1)
        XCTAssertEqual(report.errorLines, ["error: --out \(run.path)/config.json is the input \(run.path)/config.json; write the outputs elsewhere"],
                       report.stderr)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("config.json")), config)
        let compare = try Harness.aetrain(["compare", run.path, "--out", run.path])
        XCTAssertEqual(compare.status, 1)
        XCTAssertTrue(compare.stderr.contains("holds the input"), compare.stderr)
        XCTAssertEqual(try Harness.aetrain(["report", run.path, "--out", run.appendingPathComponent("report.html").path]).status, 0,
                       "a new file beside a run's files is fine")

        let tree = dir.appendingPathComponent("lfw")
        _ = try Harness.python("""
            import numpy as np, os
            from PIL import Image
            os.makedirs("\(tree.path)/Ann_Lee", exist_ok=True)
            for k in (1, 2):
                Image.fromarray(np.full((250, 250, 3), 40 * k, np.uint8)).save(f"\(tree.path)/Ann_Lee/Ann_Lee_{k:04d}.jpg")
            """)
        let image = tree.appendingPathComponent("Ann_Lee/Ann_Lee_0001.jpg")
        let jpeg = try Data(contentsOf: image)
        let inside = try Harness.aetrain(["prepare-lfw", tree.path, "--out", image.path])
        XCTAssertEqual(inside.status, 1)
        XCTAssertTrue(inside.stderr.contains("lies inside the input \(tree.path)"), inside.stderr)
        XCTAssertEqual(try Data(contentsOf: image), jpeg)
        let csv = dir.appendingPathComponent("faces.csv")
        let sidecar = try Harness.aetrain(["prepare-lfw", tree.path, "--out", csv.path])
        XCTAssertEqual(sidecar.status, 1)
        XCTAssertTrue(sidecar.stderr.contains("the CSV sidecar would be the same file"), sidecar.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: csv.path))
    }

    /// A path that is not UTF-8 is refused, not turned into another path.
    func testNonUTF8PathsAreRefused() throws {
        let r = try Harness.python("""
            import os, subprocess, sys
            out = os.path.join(b"\(dir.path)".decode(), "bad\\udcff").encode("utf-8", "surrogateescape")
            p = subprocess.run([b"\(Harness.aetrain)", b"train", b"--out", out], capture_output=True)
            made = [n for n in os.listdir(b"\(dir.path)")]
            print(p.returncode, p.stderr.decode().strip(), made)
            """)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       "64 error: argument 3 is not valid UTF-8; aetrain takes paths and values in UTF-8 (aetrain help lists the commands and flags) []")
    }

    /// Sparse coding with an endless source step (10¹² FISTA steps) still stops on SIGTERM to
    /// one rank within seconds: the alternation under way is abandoned, the checkpoint holds the
    /// state before it, and resuming continues from there.
    func testALongInnerLoopStopsInBoundedTime() throws {
        let run = dir.appendingPathComponent("sc")
        let job = try Harness.start("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Harness.aetrain, "train", "--model", "sparse-coding",
                                                       "--hidden", "64", "--fista-steps", "1000000000000", "--out", run.path])
        try job.waitFor(file: run.appendingPathComponent("config.json"), nonEmpty: true, timeout: 60)
        usleep(1_000_000)
        let ranks = Harness.children(of: job.pid)
        XCTAssertEqual(ranks.count, 2)
        let sent = Date()
        kill(ranks[1], SIGTERM)
        let r = job.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(sent)
        print("sparse coding with 10^12 FISTA steps stopped \(String(format: "%.2f", seconds)) s after SIGTERM")
        XCTAssertLessThan(seconds, 5)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("stopped on request (SIGTERM or SIGINT) before iteration 0"), r.stdout)
        let newest = try CheckpointFolder(run: run).newestValid()
        XCTAssertEqual(newest.checkpoint.header.iteration, 0)
    }
}
