import AETrainCore
import Foundation
import XCTest

/// aetrain across two "hosts" (network namespaces joined by a bridge, deploy/netns-cluster.sh),
/// 2 ranks each, over TCP: the same trajectory as one process, and a bounded end when a rank is
/// killed or a host's link is cut, after which resuming completes; `--overlap auto` decided by
/// the hosts' cores. Each host runs on its own share of this machine's cores (the script's
/// default). Needs root (CI runs as root).
final class MultiHostTests: XCTestCase {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/netns-cluster.sh").path
    var dir: URL!

    func cluster(_ arguments: [String], timeout: Double = 300, environment: [String: String] = [:]) throws -> Run {
        try Harness.run("/bin/bash", [Self.script] + arguments, timeout: timeout, environment: environment)
    }

    /// Cores each of 2 hosts has: its share of this machine's (the script's default).
    static let coresPerHost = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)

    func config(_ run: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
    }

    override func setUpWithError() throws {
        XCTAssertEqual(getuid(), 0, "network namespaces need root")
        dir = try Harness.temporaryDirectory("hosts")
        let up = try cluster(["up", "2", "2"])
        XCTAssertEqual(up.status, 0, up.stderr)
    }

    override func tearDownWithError() throws {
        let down = try cluster(["down"])
        XCTAssertEqual(down.status, 0, down.stderr)
        let left = try Harness.run("/usr/sbin/ip", ["netns", "list"])
        XCTAssertFalse(left.stdout.contains("aet-h"), "namespaces removed: \(left.stdout)")
        try? FileManager.default.removeItem(at: dir)
    }

    let small = ["train", "--quiet", "--lambda", "1", "--hidden", "64", "--seed", "3"]

    func testTwoHostsTimesTwoRanksMatchOneProcess() throws {
        let hosts = dir.appendingPathComponent("hosts"), alone = dir.appendingPathComponent("alone")
        let r = try cluster(["mpirun", "-n", "4", Harness.aetrain] + small + ["--iterations", "200", "--out", hosts.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let config = try config(hosts)
        XCTAssertEqual(config["ranks"] as? Int, 4)
        XCTAssertEqual(config["blasThreadsPerRank"] as? Int, max(1, Self.coresPerHost / 2), "2 ranks per host share its cores")
        let execution = config["execution"] as? [String: Any]
        XCTAssertEqual(execution?["overlap"] as? String, "auto")
        // Each host's 2 ranks share memory, which comes before overlap's auto.
        XCTAssertEqual(execution?["sharedMemory"] as? Bool, true)
        XCTAssertEqual(execution?["overlapEnabled"] as? Bool, false)
        XCTAssertEqual(try Harness.aetrain(small + ["--iterations", "200", "--out", alone.path]).status, 0)
        XCTAssertLessThan(try Harness.relativeDifference(alone, hosts), 0.02)
    }

    /// The gradient sum across hosts (`--gradient-sum`): with 2 ranks on each host, each host's
    /// ranks share θ and sum their gradients in shared memory, then each rank sums its part
    /// across the hosts. The run agrees with the allreduce's, is recorded as sharing memory,
    /// and a run stopped on one rank resumes to the uninterrupted run's bytes. Uneven hosts
    /// (2 ranks and 1) take the allreduce, and refuse `shared-memory` with one line.
    func testGradientSumAcrossHostsSharesMemoryWithinEach() throws {
        let args = small + ["--iterations", "200", "--log-every", "50", "--checkpoint-every", "50"]
        var runs: [String: URL] = [:]
        for sum in ["auto", "allreduce"] {
            let out = dir.appendingPathComponent("sum-\(sum)")
            runs[sum] = out
            let r = try cluster(["mpirun", "-n", "4", Harness.aetrain] + args + ["--gradient-sum", sum, "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let execution = try config(out)["execution"] as? [String: Any]
            XCTAssertEqual(execution?["sharedMemory"] as? Bool, sum == "auto", sum)
        }
        XCTAssertLessThan(try Harness.relativeDifference(runs["auto"]!, runs["allreduce"]!), 0.02)

        let stopped = dir.appendingPathComponent("sum-stopped")
        let stop = try cluster(["mpirun", "-n", "4", Harness.aetrain] + args
                               + ["--out", stopped.path, "--debug-signal-rank", "3", "--debug-signal-at", "120"])
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stdout.contains("stopped on request"), stop.stdout)
        let resume = try cluster(["mpirun", "-n", "4", Harness.aetrain, "train", "--quiet", "--resume", stopped.path])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        for name in ["V.npy", "W.npy", "b.npy", "a.npy"] {
            XCTAssertEqual(try Data(contentsOf: stopped.appendingPathComponent(name)), try Data(contentsOf: runs["auto"]!.appendingPathComponent(name)),
                           "\(name): the resumed run differs from the uninterrupted one")
        }

        let uneven = dir.appendingPathComponent("sum-uneven")
        let three = try cluster(["mpirun", "-n", "3", Harness.aetrain] + small + ["--iterations", "20", "--out", uneven.path])
        XCTAssertEqual(three.status, 0, three.stderr)
        XCTAssertEqual((try config(uneven)["execution"] as? [String: Any])?["sharedMemory"] as? Bool, false)
        let refused = try cluster(["mpirun", "-n", "3", Harness.aetrain] + small
                                  + ["--iterations", "20", "--gradient-sum", "shared-memory", "--out", dir.appendingPathComponent("sum-refused").path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines, ["error: --gradient-sum shared-memory needs the same number of ranks on every node; these 3 ranks are spread unevenly: use auto or allreduce"], refused.stderr)
    }

    /// `--deterministic` across hosts: 2 hosts × 1 rank and 2 hosts × 2 ranks write the same
    /// bytes as one process after 300 steps of the sheet's sparse model on the embedded faces
    /// (DeterminismTests' check, launched over TCP on the namespace cluster).
    func testDeterministicRunsAcrossHostsMatchOneProcess() throws {
        let launch: Launcher = { ranks, arguments in
            ranks == 1 ? try Harness.aetrain(arguments, timeout: 600)
                       : try self.cluster(["mpirun", "-n", "\(ranks)", "--map-by", "node", Harness.aetrain] + arguments, timeout: 600)
        }
        let arguments = ["--lambda", "1", "--iterations", "300", "--log-every", "50", "--seed", "3"]
        let whole = try BitIdentity.assertRankCountsAgree([1, 2, 4], arguments, in: dir, launch: launch)
        let hosts = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("ranks2/config.json"))) as? [String: Any]
        XCTAssertEqual(hosts?["ranks"] as? Int, 2)
        try BitIdentity.assertResumeAcrossRankCounts(stopRanks: 4, at: 150, resumeRanks: [2], total: 300,
                                                     ["--lambda", "1", "--log-every", "50", "--seed", "3"],
                                                     matching: whole, in: dir, launch: launch)
    }

    /// `--overlap auto` across 2 hosts × 1 rank: on only where the host has a core to spare.
    /// With the machine's cores split between the hosts (1 each here) it stays off; with every
    /// core shared by both hosts (AET_NETNS_CORES=shared), each rank sees a spare core.
    func testOverlapAutoFollowsTheHostsCores() throws {
        // Stated here, not asked of `OverlapMode`: one rank per host overlaps when its host has
        // a second core for the reduction to progress on, and only then.
        for (sharing, cores) in [("split", Self.coresPerHost), ("shared", ProcessInfo.processInfo.activeProcessorCount)] {
            let expected = cores >= 2
            let up = try cluster(["up", "2", "1"], environment: ["AET_NETNS_CORES": sharing])
            XCTAssertEqual(up.status, 0, up.stderr)
            let out = dir.appendingPathComponent(sharing)
            let r = try cluster(["mpirun", "-n", "2", Harness.aetrain] + small + ["--iterations", "30", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let config = try config(out)
            XCTAssertEqual(config["blasThreadsPerRank"] as? Int, cores, sharing)
            XCTAssertEqual((config["execution"] as? [String: Any])?["overlapEnabled"] as? Bool, expected, "\(sharing): \(cores) core(s) per host")
            if sharing == "shared" { XCTAssertTrue(expected, "every core shared: at least 2 on a CI machine") }
        }
    }

    /// Starts a long run on the cluster and waits for its checkpoint at iteration 100.
    func startLongRun(_ out: URL, peerTimeout: Int) throws -> Job {
        let job = try Harness.start("/bin/bash", [Self.script, "mpirun", "-n", "4", Harness.aetrain] + small
                                    + ["--iterations", "1000000", "--checkpoint-every", "50", "--peer-timeout", "\(peerTimeout)", "--out", out.path])
        try job.waitFor(file: CheckpointFolder(run: out).file(iteration: 100), nonEmpty: true, timeout: 120)
        return job
    }

    func resumeCompletes(_ out: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let newest = try CheckpointFolder(run: out).newestValid()
        XCTAssertTrue(newest.warnings.isEmpty, "\(newest.warnings)", file: file, line: line)
        let r = try cluster(["mpirun", "-n", "4", Harness.aetrain, "train", "--quiet", "--resume", out.path,
                             "--iterations", "\(newest.checkpoint.header.iteration + 60)"])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        XCTAssertEqual(try Harness.metrics(out).last?["iteration"] as? Int, newest.checkpoint.header.iteration + 59, file: file, line: line)
    }

    func testKilledRankOnOneHostEndsTheJob() throws {
        let out = dir.appendingPathComponent("kill")
        let job = try startLongRun(out, peerTimeout: 60)
        let pids = try cluster(["pids", "2"]).stdout.split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(pids.count, 2, "two ranks on host 2")
        let started = Date()
        kill(pids[0], SIGKILL)
        let r = job.wait(timeout: 120)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "ended within the bound: \(r.stderr)")
        try resumeCompletes(out)
    }

    func testHostCutOffEndsTheJob() throws {
        let out = dir.appendingPathComponent("cut")
        let job = try startLongRun(out, peerTimeout: 20)
        let started = Date()
        XCTAssertEqual(try cluster(["cut", "2"]).status, 0)
        let r = job.wait(timeout: 120)
        let seconds = Date().timeIntervalSince(started)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 60, "ended within the bound")
        XCTAssertTrue(r.stderr.contains("lost communication with a remote daemon") || r.stderr.contains("error: no progress for 20 s"), r.stderr)
        XCTAssertEqual(try cluster(["heal", "2"]).status, 0)
        try resumeCompletes(out)
        print("host cut off: the job ended after \(Int(seconds)) s")
    }
}
