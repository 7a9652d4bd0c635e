import AETrainCore
import Foundation
import XCTest

/// Bad settings and a hostile environment: one clear error line, a nonzero exit, earlier files intact.
final class BadSettingsTests: XCTestCase {
    var dir: URL!
    var mounts: [URL] = []

    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("settings") }

    override func tearDownWithError() throws {
        for m in mounts { _ = try? Harness.run("/bin/umount", [m.path]) }
        try? FileManager.default.removeItem(at: dir)
    }

    /// One error line from aetrain (under mpirun, mpirun adds its own notice that a rank exited nonzero).
    func assertOneError(_ r: Run, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr, file: file, line: line)
        let ours = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("-") && !$0.hasPrefix(" ") && !$0.isEmpty }
            .filter { !["Primary job", "a non-zero exit", "mpirun detected", "the job to be", "process returned", "Per user-direction"].contains(where: $0.contains) }
        XCTAssertEqual(ours.count, 1, "exactly one line of ours: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.errorLines.first?.contains(fragment) == true, "'\(fragment)' not in \(r.stderr)", file: file, line: line)
    }

    /// A tmpfs of `size` at a new folder (root only: the tests run as root in CI).
    func tmpfs(_ name: String, options: String) throws -> URL {
        let mount = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        guard getuid() == 0 else { throw UserError("mounting a tmpfs needs root (CI runs as root)") }
        let r = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", mount.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        mounts.append(mount)
        return mount
    }

    /// `train FLAG=VALUE --out x` on `ranks` ranks for each case, launched at once (each is
    /// refused before it writes anything): one error line saying MESSAGE.
    func assertEachRefused(ranks: Int, _ cases: [(flag: String, value: String, message: String)],
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let runs = try Harness.launchAll(ranks, cases.map { ["train", "\($0.flag)=\($0.value)", "--out", dir.appendingPathComponent("x").path] },
                                         file: file, line: line)
        for (c, r) in zip(cases, runs) { assertOneError(r, c.message, file: file, line: line) }
    }

    func testZeroOrNegativeSizes() throws {
        try assertEachRefused(ranks: 2, [("--hidden", "0", "--hidden must be positive, got 0"), ("--batch-size", "-3", "--batch-size must be positive, got -3"),
                                         ("--iterations", "0", "--iterations must be positive"), ("--log-every", "0", "--log-every must be positive")])
    }

    func testZeroOrNegativeRates() throws {
        try assertEachRefused(ranks: 1, [("--lr", "0", "--lr must be positive"), ("--lr", "-1e-4", "--lr must be positive"),
                                         ("--lambda", "-1", "--lambda must be a finite number ≥ 0"), ("--beta2", "1", "--beta2 must be in [0, 1)"),
                                         ("--adam-eps", "0", "--adam-eps must be positive"), ("--entropy-floor", "-1", "--entropy-floor must be positive"),
                                         ("--peer-timeout", "0", "--peer-timeout must be positive")])
    }

    func testZeroOrNegativeCounts() throws {
        try assertEachRefused(ranks: 1, [("--threads", "0", "--threads must be positive"), ("--checkpoint-every", "-1", "--checkpoint-every must be ≥ 0"),
                                         ("--keep-checkpoints", "0", "--keep-checkpoints must be positive")])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path), "nothing written")
    }

    func testBatchSmallerThanTheRanks() throws {
        assertOneError(try Harness.mpirun(3, ["train", "--batch-size", "2", "--out", dir.appendingPathComponent("x").path]),
                       "--batch-size 2 is smaller than the number of ranks (3)")
    }

    func testUnusableInit() throws {
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        assertOneError(try Harness.mpirun(2, ["train", "--init", empty.path, "--out", dir.appendingPathComponent("x").path]), "V.npy: no such file")
        let small = dir.appendingPathComponent("small")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--data", "synthetic:20,4,4", "--batch-size", "5", "--hidden", "3",
                                            "--iterations", "2", "--out", small.path]).status, 0)
        assertOneError(try Harness.aetrain(["train", "--init", small.path, "--out", dir.appendingPathComponent("x").path]),
                       "--init weights are for d = 16 pixels and h = 3 hidden units, but this run has d = 625 and h = 3")
    }

    func testUnusableResume() throws {
        assertOneError(try Harness.mpirun(2, ["train", "--resume", dir.appendingPathComponent("nope").path]), "no such run directory")
        let bare = dir.appendingPathComponent("bare")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        assertOneError(try Harness.mpirun(2, ["train", "--resume", bare.path]), "no checkpoint to resume from")
    }

    func testOutputDirectoryNotWritable() throws {
        let readOnly = try tmpfs("ro", options: "ro,size=1m")
        assertOneError(try Harness.mpirun(2, ["train", "--out", readOnly.path]), "--out \(readOnly.path): the directory is not writable")
        assertOneError(try Harness.aetrain(["train", "--out", readOnly.appendingPathComponent("run").path]), "cannot create the directory")
        let file = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        assertOneError(try Harness.aetrain(["train", "--out", file.path]), "exists and is not a directory")
    }

    /// The disk fills up while the second checkpoint is written (each is about 6 MB).
    func testFullDiskWhileCheckpointing() throws {
        let small = try tmpfs("small", options: "size=9m")
        let out = small.appendingPathComponent("run")
        let r = try Harness.mpirun(2, ["train", "--out", out.path, "--iterations", "100", "--checkpoint-every", "10", "--log-every", "5"])
        assertOneError(r, "cannot write \(out.path)/checkpoints/step-000000020.ckpt: write: No space left on device")
        let folder = CheckpointFolder(run: out)
        XCTAssertEqual(folder.files().map(\.lastPathComponent), ["step-000000010.ckpt"], "no temporary file left")
        XCTAssertEqual(try folder.newestValid().checkpoint.header.iteration, 10, "the earlier checkpoint is intact")
        XCTAssertEqual(try Harness.metrics(out).map { $0["iteration"] as? Int ?? -1 }, [0, 5, 10, 15])
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))))
    }
}
