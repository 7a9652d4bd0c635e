import AETrainCore
import Foundation
import XCTest

/// aetrain under a real one-node Slurm (deploy/slurm-cluster.sh: munged, slurmctld, slurmd),
/// through deploy/slurm/aetrain.sbatch, with the binary that deploy/install.sh builds with the
/// Swift runtime linked in. Needs root and Debian's slurmctld, slurmd, slurm-client and munge
/// (deploy/test.sh installs them).
final class SlurmTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let batchScript = repository.appendingPathComponent("deploy/slurm/aetrain.sbatch").path
    static var prefix: URL?
    static var clusterDirectory: URL?
    static var setUpFailure: String?
    static var aetrain: String { prefix?.appendingPathComponent("bin/aetrain").path ?? "/nonexistent" }
    static var slurmConf: String { clusterDirectory?.appendingPathComponent("slurm.conf").path ?? "/nonexistent" }
    var dir: URL!

    static func script(_ name: String, _ arguments: [String], timeout: Double = 120, directory: URL? = nil) throws -> Run {
        try Harness.run("/bin/bash", [repository.appendingPathComponent("deploy/\(name)").path] + arguments, timeout: timeout,
                        directory: directory)
    }

    override class func setUp() {
        super.setUp()
        do {
            let prefix = try Harness.temporaryDirectory("slurm-prefix")
            self.prefix = prefix
            var started = Date()
            // A relative PREFIX, as a user types it: it names a place from the caller's directory.
            let install = try script("install.sh", [prefix.lastPathComponent], timeout: 1200, directory: prefix.deletingLastPathComponent())
            guard install.status == 0 else { setUpFailure = "deploy/install.sh failed: \(install.stderr)"; return }
            guard FileManager.default.isExecutableFile(atPath: prefix.appendingPathComponent("bin/aetrain").path) else {
                setUpFailure = "deploy/install.sh \(prefix.lastPathComponent), run from \(prefix.deletingLastPathComponent().path), "
                    + "installed no \(prefix.path)/bin/aetrain: \(install.stdout)"
                return
            }
            print("SlurmTests: deploy/install.sh took \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            let cluster = try Harness.temporaryDirectory("slurm-cluster")
            clusterDirectory = cluster
            started = Date()
            let up = try script("slurm-cluster.sh", ["up", cluster.path])
            guard up.status == 0 else { setUpFailure = "deploy/slurm-cluster.sh up failed: \(up.stderr)"; return }
            print("SlurmTests: cluster up in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(up.stdout)")
        } catch {
            setUpFailure = "\(error)"
        }
    }

    override class func tearDown() {
        if let cluster = clusterDirectory {
            let down = try? script("slurm-cluster.sh", ["down", cluster.path])
            if down?.status != 0 { print("SlurmTests: deploy/slurm-cluster.sh down failed: \(down?.stderr ?? "")") }
            try? FileManager.default.removeItem(at: cluster)
        }
        if let prefix { try? FileManager.default.removeItem(at: prefix) }
        super.tearDown()
    }

    override func setUpWithError() throws {
        if let failure = Self.setUpFailure {
            XCTFail(failure)
            throw UserError(failure)
        }
        dir = try Harness.temporaryDirectory("slurm")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    // MARK: Slurm commands

    var slurmEnvironment: [String: String] { ["SLURM_CONF": Self.slurmConf, "AETRAIN": Self.aetrain] }

    func slurm(_ command: String, _ arguments: [String], environment extra: [String: String] = [:],
               file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        try Harness.run("/usr/bin/\(command)", arguments, timeout: 60, environment: slurmEnvironment.merging(extra) { $1 },
                        directory: dir, file: file, line: line)
    }

    /// Submits the batch script for `run` and returns the job id; its log goes to `log`.
    func submit(_ options: [String], run: URL, log: URL, flags: [String], launcher: String? = nil,
                file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try slurm("sbatch", ["--parsable", "--output", log.path] + options + [Self.batchScript, run.path] + flags,
                          environment: launcher.map { ["AETRAIN_LAUNCHER": $0] } ?? [:], file: file, line: line)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `scontrol show job` as fields (JobState, ExitCode, Restarts, ...).
    func job(_ id: String) throws -> [String: String] {
        let r = try slurm("scontrol", ["show", "job", "-o", id])
        var fields: [String: String] = [:]
        for word in r.stdout.split(whereSeparator: \.isWhitespace) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }

    /// Waits until the job has ended for good (not pending, running or requeued) and returns its fields.
    func waitForEnd(_ id: String, timeout: Double, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fields = try job(id)
            if let state = fields["JobState"], ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(state) {
                return fields
            }
            usleep(500_000)
        }
        _ = try slurm("scancel", [id])
        XCTFail("job \(id) did not end within \(timeout) s", file: file, line: line)
        return try job(id)
    }

    func ranks(_ run: URL) throws -> Int? {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        return config?["ranks"] as? Int
    }

    func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    func weightsEqual(_ a: URL, _ b: URL) throws -> Bool {
        try ["V.npy", "W.npy", "b.npy", "a.npy"].allSatisfy {
            try Data(contentsOf: a.appendingPathComponent($0)) == Data(contentsOf: b.appendingPathComponent($0))
        }
    }

    // MARK: Tests

    /// The static binary trains under mpirun with the toolchain's directory hidden (a mount
    /// namespace with a tmpfs over /opt/swift), as on a compute node without Swift: on this
    /// machine, and on the two namespace hosts of deploy/netns-cluster.sh (whose network
    /// namespaces inherit that mount namespace), with names of their own.
    func testInstalledBinaryRunsWithoutTheToolchain() throws {
        let out = dir.appendingPathComponent("static"), hosts = dir.appendingPathComponent("hosts")
        let train = "\(Self.aetrain) train --quiet --iterations 50"
        let cluster = Self.repository.appendingPathComponent("deploy/netns-cluster.sh").path
        let command = "mount -t tmpfs none /opt/swift && ! ls /opt/swift/usr/lib/swift/linux/libswiftCore.so 2>/dev/null"
            + " && mpirun -n 2 --oversubscribe \(train) --out \(out.path)"
            + " && AET_NETNS_PREFIX=aes AET_NETNS_SUBNET=10.78.0 bash \(cluster) run -n 4 \(train) --out \(hosts.path)"
        let r = try Harness.run("/usr/bin/unshare", ["-m", "/bin/sh", "-c", command], timeout: 180)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try ranks(out), 2)
        XCTAssertEqual(try Harness.metrics(out).last?["iteration"] as? Int, 49)
        XCTAssertEqual(try ranks(hosts), 4, "2 namespace hosts × 2 ranks")
    }

    func testBothLaunchModesTrainWithTwoRanks() throws {
        for launcher in ["srun", "mpirun"] {
            let out = dir.appendingPathComponent(launcher), log = dir.appendingPathComponent("\(launcher).log")
            let id = try submit(["-n", "2"], run: out, log: log, flags: ["--quiet", "--iterations", "100"], launcher: launcher)
            let fields = try waitForEnd(id, timeout: 120)
            XCTAssertEqual(fields["JobState"], "COMPLETED", text(log))
            XCTAssertEqual(fields["ExitCode"], "0:0", text(log))
            XCTAssertTrue(text(log).contains((launcher == "srun" ? " srun --mpi=pmix " : " mpirun ") + Self.aetrain), text(log))
            XCTAssertEqual(try ranks(out), 2, "\(launcher): \(text(log))")
        }
    }

    /// `scancel --signal=TERM --batch`: the script forwards the signal to the ranks (mpirun's
    /// children here), rank 0 checkpoints, and the job completes with exit code 0.
    func testScancelTermCheckpointsAndExitsZero() throws {
        let out = dir.appendingPathComponent("term"), log = dir.appendingPathComponent("term.log")
        let id = try submit(["-n", "2"], run: out, log: log, flags: ["--iterations", "10000000", "--checkpoint-every", "0"],
                            launcher: "mpirun")
        let metrics = out.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(60)
        while (try? Data(contentsOf: metrics))?.isEmpty ?? true, Date() < deadline { usleep(100_000) }
        XCTAssertEqual(try slurm("scancel", ["--signal=TERM", "--batch", id]).status, 0)
        let fields = try waitForEnd(id, timeout: 60)
        XCTAssertEqual(fields["JobState"], "COMPLETED", text(log))
        XCTAssertEqual(fields["ExitCode"], "0:0", text(log))
        XCTAssertTrue(text(log).contains("stopped on request"), text(log))
        XCTAssertEqual(CheckpointFolder(run: out).files().count, 1, text(log))
    }

    /// A job that needs more than its one-minute limit, with --requeue: the early SIGTERM
    /// (B:TERM@15; Slurm sends it up to half a minute earlier) stops it with a checkpoint
    /// before Slurm kills it, the script requeues it, the requeued job resumes and finishes,
    /// bit for bit equal to an uninterrupted run. The uninterrupted twin trains beside the
    /// chain, sharing the machine as the two probes that sized them did.
    func testTimeLimitChainResumesBitIdentical() throws {
        let out = dir.appendingPathComponent("chain"), log = dir.appendingPathComponent("chain.log")
        // Dense kernels throughout: λ = 1 switches to the faster sparse kernels after about 2,000
        // iterations, which made a run sized from its first 1,000 end inside the limit.
        let flags = ["--lambda", "1", "--kernels", "dense", "--iterations", "\(try iterationsPastOneMinute())", "--log-every", "500",
                     "--checkpoint-every", "0"]
        let whole = dir.appendingPathComponent("whole")
        let twin = try Harness.start("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Self.aetrain, "train", "--quiet", "--out", whole.path] + flags)
        defer { if twin.process.isRunning { twin.process.terminate() } }
        let started = Date()
        let id = try submit(["-n", "2", "--time=1", "--signal=B:TERM@15", "--requeue"], run: out, log: log, flags: flags)
        // Once requeued (the first job stopped at its limit), the job gets ten minutes: a chain of
        // two, whatever else slows this machine down meanwhile.
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, let state = try job(id)["JobState"], ["PENDING", "RUNNING", "COMPLETING"].contains(state),
              (Int(try job(id)["Restarts"] ?? "") ?? 0) == 0 {
            usleep(500_000)
        }
        XCTAssertEqual(try slurm("scontrol", ["update", "JobId=\(id)", "TimeLimit=10"]).status, 0)
        let fields = try waitForEnd(id, timeout: 600)
        let chain = Date().timeIntervalSince(started)
        let logText = text(log)
        XCTAssertEqual(fields["JobState"], "COMPLETED", logText)
        XCTAssertEqual(fields["ExitCode"], "0:0", logText)
        XCTAssertEqual(Int(fields["Restarts"] ?? "") ?? 0, 1, "stopped at the first limit, then finished: \(logText)")
        XCTAssertTrue(logText.contains("stopped on request"), logText)
        XCTAssertTrue(logText.contains("requeueing job \(id)"), logText)
        XCTAssertTrue(logText.contains("resuming \(out.path) from step-"), logText)
        XCTAssertTrue(logText.contains("the run finished"), logText)
        XCTAssertFalse(logText.contains("DUE TO TIME LIMIT"), logText)
        print("SlurmTests: chain of \((Int(fields["Restarts"] ?? "") ?? 0) + 1) jobs took \(String(format: "%.1f", chain)) s; stop latencies: \(Self.stopLatencies(logText))")

        let r = twin.wait(timeout: 600)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(try weightsEqual(whole, out), "bit-for-bit equal to the uninterrupted run")
    }

    /// Iterations of the chain's run with 2 ranks that take about 90 s on this machine now, well
    /// past the one-minute limit (measured: the speed varies with what else runs). Two probes
    /// run at once, as the chain and its twin will; the faster one sizes the run.
    func iterationsPastOneMinute() throws -> Int {
        let probes = (0..<2).map { dir.appendingPathComponent("probe\($0)") }
        let runs = try Harness.runAll(probes.map {
            Harness.Command("/usr/bin/mpirun", ["-n", "2", "--oversubscribe", Self.aetrain, "train", "--quiet", "--lambda", "1",
                                                "--kernels", "dense", "--iterations", "1000", "--out", $0.path])
        }, timeout: 120)
        for r in runs { XCTAssertEqual(r.status, 0, r.stderr) }
        let seconds = try probes.map { try Harness.metrics($0).last?["seconds"] as? Double ?? 0.01 }.min() ?? 0.01
        let iterations = max(1000, Int(90 * 1000 / max(seconds, 0.01)))
        print("SlurmTests: 1000 iterations took \(String(format: "%.2f", seconds)) s with two runs at once; the chain trains \(iterations)")
        return iterations
    }

    /// Seconds from each "SIGTERM" line of the batch script to its "stopped with checkpoint" line.
    static func stopLatencies(_ log: String) -> [String] {
        func seconds(_ line: Substring) -> Double? {
            let words = line.split(separator: " ")
            guard words.count > 1 else { return nil }
            let parts = words[1].split(separator: ":").compactMap { Double($0) }
            return parts.count == 3 ? parts[0] * 3600 + parts[1] * 60 + parts[2] : nil
        }
        var latencies: [String] = [], signalled: Double?
        for line in log.split(separator: "\n") where line.hasPrefix("aetrain.sbatch:") {
            if line.contains("SIGTERM") { signalled = seconds(line) }
            if line.contains("stopped with checkpoint"), let start = signalled, let end = seconds(line) {
                latencies.append(String(format: "%.2f s", end - start))
            }
        }
        return latencies
    }

    /// Ranks that each see an MPI world of 1 while the launcher started several: one error
    /// line from the first task, nonzero exit, no training. A plain run inside an allocation
    /// (SLURM_NTASKS without a step) is one process and trains.
    func testSingletonGuard() throws {
        let out = dir.appendingPathComponent("single")
        let args = ["train", "--quiet", "--iterations", "5", "--out", out.path]
        let step = try Harness.run(Self.aetrain, args, environment: ["SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": "0"])
        XCTAssertEqual(step.status, 1)
        XCTAssertEqual(step.errorLines.count, 1, step.stderr)
        XCTAssertTrue(step.stderr.contains("srun started 2 tasks") && step.stderr.contains("srun --mpi=pmix"), step.stderr)
        let other = try Harness.run(Self.aetrain, args, environment: ["SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"])
        XCTAssertEqual(other.status, 1)
        XCTAssertEqual(other.stderr, "", "only the first task prints")
        let ompi = try Harness.run(Self.aetrain, args, environment: ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"])
        XCTAssertEqual(ompi.status, 1)
        XCTAssertEqual(ompi.errorLines.count, 1, ompi.stderr)
        XCTAssertTrue(ompi.stderr.contains("mpirun started 2 processes"), ompi.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing trained")

        let allocation = try Harness.run(Self.aetrain, args, environment: ["SLURM_NTASKS": "2", "SLURM_NPROCS": "2", "SLURM_JOB_ID": "1"])
        XCTAssertEqual(allocation.status, 0, allocation.stderr)

        // The real thing: plain srun starts 2 tasks without PMI. Debian's Open MPI refuses to
        // start them as singletons; either way, no two copies of the run may train.
        let plain = dir.appendingPathComponent("plain")
        let r = try slurm("srun", ["-n", "2", "--mpi=none", Self.aetrain] + ["train", "--quiet", "--iterations", "5", "--out", plain.path])
        XCTAssertNotEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: plain.appendingPathComponent("V.npy").path), "no run trained")
        print("SlurmTests: plain srun -n 2: \(r.stderr.split(separator: "\n").prefix(3).joined(separator: " | "))")
    }
}
