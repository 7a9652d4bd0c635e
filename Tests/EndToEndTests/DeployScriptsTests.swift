import Foundation
import XCTest

/// The scripts in deploy/ refuse what they cannot do with one line, before doing anything:
/// `install.sh` with an empty PREFIX, `aetrain.sbatch` outside a Slurm job or without a binary
/// to launch; and the batch script resumes from the checkpoint with the highest step number.
/// (SlurmTests runs both scripts for real, `install.sh` with a relative PREFIX.)
final class DeployScriptsTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let install = repository.appendingPathComponent("deploy/install.sh").path
    static let batchScript = repository.appendingPathComponent("deploy/slurm/aetrain.sbatch").path

    var scratch: URL!
    override func setUpWithError() throws { scratch = try Harness.temporaryDirectory("deploy") }
    override func tearDownWithError() throws { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    func assertOneError(_ r: Run, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("error: ") ?? false, r.stderr, file: file, line: line)
        for fragment in fragments { XCTAssertTrue(r.stderr.contains(fragment), "\(fragment) not in: \(r.stderr)", file: file, line: line) }
    }

    func testInstallRefusesAnEmptyPrefixBeforeBuilding() throws {
        let r = try Harness.run("/bin/bash", [Self.install, ""], timeout: 30, directory: scratch)
        assertOneError(r, ["PREFIX is empty", "/bin"])
        XCTAssertFalse(r.stdout.contains("installing"), "refused before installing packages: \(r.stdout)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }

    func testBatchScriptOutsideSlurmExplainsItself() throws {
        let r = try Harness.run("/bin/bash", [Self.batchScript, scratch.appendingPathComponent("run").path],
                                timeout: 30, environment: ["SLURM_JOB_ID": ""], directory: scratch)
        assertOneError(r, ["inside a Slurm job", "SLURM_JOB_ID", "sbatch", "mpirun"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("run").path))
    }

    func testBatchScriptSaysWhereItLookedForTheBinary() throws {
        let run = scratch.appendingPathComponent("run").path
        let noBinary = try Harness.run("/bin/bash", [Self.batchScript, run], timeout: 30,
                                       environment: ["SLURM_JOB_ID": "7", "AETRAIN": "", "PATH": "/usr/bin:/bin"], directory: scratch)
        assertOneError(noBinary, ["AETRAIN is not set", "no aetrain on PATH (/usr/bin:/bin)", "deploy/install.sh"])
        let missing = scratch.appendingPathComponent("nowhere/aetrain").path
        let wrong = try Harness.run("/bin/bash", [Self.batchScript, run], timeout: 30,
                                    environment: ["SLURM_JOB_ID": "7", "AETRAIN": missing], directory: scratch)
        assertOneError(wrong, ["AETRAIN=\(missing) is not an executable file"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: run))
    }

    /// Checkpoint names carry 9 digits, and a tenth past 10⁹ steps: by name, step-999999999
    /// would sort after step-1000000000.
    func testBatchScriptResumesFromTheHighestStep() throws {
        let run = scratch.appendingPathComponent("run")
        let checkpoints = run.appendingPathComponent("checkpoints")
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        for name in ["step-000000999.ckpt", "step-999999999.ckpt", "step-1000000000.ckpt", "step-x.ckpt", "notes.txt"] {
            FileManager.default.createFile(atPath: checkpoints.appendingPathComponent(name).path, contents: Data())
        }
        // A stand-in launcher that records what it was asked to run, and a binary that does nothing.
        let bin = scratch.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let launcher = bin.appendingPathComponent("mpirun")
        try "#!/bin/sh\necho \"launched: $*\"\n".write(to: launcher, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: launcher.path)
        let r = try Harness.run("/bin/bash", [Self.batchScript, run.path, "--lambda", "1"], timeout: 30,
                                environment: ["SLURM_JOB_ID": "7", "AETRAIN": "/bin/true", "AETRAIN_LAUNCHER": "mpirun",
                                              "PATH": "\(bin.path):/usr/bin:/bin"], directory: scratch)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("resuming \(run.path) from step-1000000000.ckpt"), r.stdout)
        XCTAssertTrue(r.stdout.contains("launched: /bin/true train --resume \(run.path) --lambda 1"), r.stdout)
    }
}
