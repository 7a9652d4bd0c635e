import AETrainCore
import Foundation
import XCTest

/// `--gradient-sum`: ranks on one node share θ, the moments and their gradients, and each sums
/// and updates its own part, against the allreduce where every rank updates everything.
final class SharedMemoryTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("shared-memory") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func weights(_ run: URL) throws -> [Data] {
        try ["V.npy", "W.npy", "b.npy", "a.npy"].map { try Data(contentsOf: run.appendingPathComponent($0)) }
    }

    /// The logged terms (rec, reg, held-out terms, …) without the timings.
    func terms(_ run: URL) throws -> [[String: Double]] {
        let timing: Set<String> = ["seconds", "compute_seconds", "communication_seconds", "optimizer_seconds", "seconds_to_first_step"]
        return try Harness.metrics(run).map { $0.compactMapValues { $0 as? Double }.filter { !timing.contains($0.key) } }
    }

    func execution(_ run: URL) throws -> [String: Any] {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        return config?["execution"] as? [String: Any] ?? [:]
    }

    func train(_ ranks: Int, _ name: String, _ flags: [String]) throws -> URL {
        let out = dir.appendingPathComponent(name)
        let r = try Harness.mpirun(ranks, ["train", "--out", out.path, "--quiet", "--log-every", "50", "--eval-fraction", "0.1",
                                           "--batch-size", "40"] + flags)
        XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
        return out
    }

    /// Two ranks: a + b is b + a, so the shared sum is MPI's to the bit, and so is everything
    /// after it (2ηW, Adam on each half). The weights and every logged term, held-out ones
    /// included, are byte-identical; `auto` takes shared memory on one node. (Equal bits at
    /// every step: 100 steps run the same code as 10,000.)
    func testTwoRanksSharingMemoryComputeTheAllreduceRunBitForBit() throws {
        for lambda in ["1", "0"] {
            let common = ["--iterations", "100", "--lambda", lambda]
            let shared = try train(2, "shared-\(lambda)", common + ["--gradient-sum", "shared-memory"])
            let reduced = try train(2, "allreduce-\(lambda)", common + ["--gradient-sum", "allreduce"])
            let auto = try train(2, "auto-\(lambda)", common)
            XCTAssertEqual(try weights(shared), try weights(reduced), "λ = \(lambda): shared memory and allreduce differ")
            XCTAssertEqual(try terms(shared), try terms(reduced), "λ = \(lambda): logged terms differ")
            XCTAssertEqual(try weights(auto), try weights(shared))
            XCTAssertEqual(try execution(shared)["sharedMemory"] as? Bool, true)
            XCTAssertEqual(try execution(reduced)["sharedMemory"] as? Bool, false)
            XCTAssertEqual(try execution(auto)["sharedMemory"] as? Bool, true)
            XCTAssertEqual(try execution(auto)["gradientSum"] as? String, "auto")
        }
    }

    /// Four ranks (each a quarter of θ): the sum's grouping differs from MPI's, so the runs
    /// agree within rounding, as across rank counts; a run stopped on one rank resumes bit-exact
    /// (at any length: 100 steps, checkpoints every 25 and a stop at 60 run the same code).
    func testFourRanksAgreeWithTheAllreduceAndResumeExactly() throws {
        let common = ["--iterations", "100", "--lambda", "1", "--checkpoint-every", "25"]
        let shared = try train(4, "shared4", common + ["--gradient-sum", "shared-memory"])
        let reduced = try train(4, "allreduce4", common + ["--gradient-sum", "allreduce"])
        XCTAssertLessThan(try Harness.relativeDifference(shared, reduced), 0.02)

        let stopped = dir.appendingPathComponent("stopped4")
        let stop = try Harness.mpirun(4, ["train", "--out", stopped.path, "--log-every", "50", "--eval-fraction", "0.1", "--batch-size", "40",
                                          "--debug-signal-rank", "2", "--debug-signal-at", "60"] + common)
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("stopped on request"), stop.stdout)
        let resume = try Harness.mpirun(4, ["train", "--resume", stopped.path, "--quiet"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        XCTAssertEqual(try weights(stopped), try weights(shared), "resumed shared-memory run differs from the uninterrupted one")
        XCTAssertEqual(try terms(stopped), try terms(shared))
    }

    /// A node whose shared memory has no room for the window (a container's /dev/shm is often
    /// 64 MB): `auto` falls back to the allreduce and trains, `shared-memory` is refused with
    /// one line. The room is where Open MPI keeps the window, here a 4 MB tmpfs named by
    /// osc_sm_backing_directory.
    func testNoRoomForTheWindowFallsBackOrIsRefused() throws {
        XCTAssertEqual(getuid(), 0, "mounting a small tmpfs needs root")
        let small = dir.appendingPathComponent("small-shm")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        let mount = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small.path])
        XCTAssertEqual(mount.status, 0, mount.stderr)
        defer { _ = try? Harness.run("/bin/umount", [small.path]) }
        let environment = ["OMPI_MCA_osc_sm_backing_directory": small.path]
        let auto = dir.appendingPathComponent("no-room-auto")
        let r = try Harness.mpirun(2, ["train", "--quiet", "--iterations", "30", "--out", auto.path], environment: environment)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try execution(auto)["sharedMemory"] as? Bool, false, "no room: the allreduce")
        let refused = try Harness.mpirun(2, ["train", "--quiet", "--iterations", "30", "--gradient-sum", "shared-memory",
                                             "--out", dir.appendingPathComponent("no-room-refused").path], environment: environment)
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--gradient-sum shared-memory: no room for the shared window"), refused.stderr)
        let bench = try Harness.mpirun(2, ["bench", "--examples", "300", "--image-shape", "10x10", "--hidden", "32", "--batch-size", "20",
                                           "--steps", "20", "--warmup", "2", "--json"], environment: environment)
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["gradient_sum"] as? String, "allreduce", bench.stdout)
    }

    /// The benchmark says how it summed; the refused combinations are one-line usage errors.
    func testBenchReportsTheGradientSumAndBadCombinationsAreRefused() throws {
        for (mode, expected) in [("auto", "shared-memory"), ("allreduce", "allreduce")] {
            let r = try Harness.mpirun(2, ["bench", "--examples", "300", "--image-shape", "10x10", "--hidden", "32", "--batch-size", "20",
                                           "--steps", "20", "--warmup", "2", "--json", "--gradient-sum", mode])
            XCTAssertEqual(r.status, 0, r.stderr)
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(object?["gradient_sum"] as? String, expected, r.stdout)
            XCTAssertGreaterThan(object?["ms_per_step"] as? Double ?? 0, 0)
        }
        for (command, extra) in [("train", ["--iterations", "2"]), ("bench", ["--steps", "2"])] {
            for bad in [["--deterministic"], ["--overlap", "always"]] {
                let out = command == "train" ? ["--out", dir.appendingPathComponent("bad").path] : []
                let r = try Harness.mpirun(2, [command, "--gradient-sum", "shared-memory"] + bad + extra + out)
                XCTAssertEqual(r.status, 64, "\(command) \(bad): \(r.stderr)")
                XCTAssertEqual(r.errorLines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains("--gradient-sum"), r.stderr)
            }
        }
        // One process has no other rank to share with: refused, as the docs say, not a silent allreduce.
        for (command, extra) in [("train", ["--iterations", "2"]), ("bench", ["--steps", "2"])] {
            let out = dir.appendingPathComponent("alone")
            let r = try Harness.aetrain([command, "--gradient-sum", "shared-memory"] + extra + (command == "train" ? ["--out", out.path] : []))
            XCTAssertEqual(r.status, 1, "\(command): \(r.stderr)")
            XCTAssertEqual(r.errorLines, ["error: --gradient-sum shared-memory needs 2 or more ranks on each node; a single process "
                                          + "has no other rank to share with: use auto or allreduce"], r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(command) created --out before refusing")
        }
        let unknown = try Harness.aetrain(["train", "--gradient-sum", "tree", "--iterations", "2"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("--gradient-sum"), unknown.stderr)
    }
}
