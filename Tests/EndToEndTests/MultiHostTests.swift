import AETrainCore
import Foundation
import XCTest

/// aetrain across two "hosts" (network namespaces joined by a bridge, deploy/netns-cluster.sh),
/// 2 ranks each, over TCP: the same trajectory as one process, and a bounded end when a rank is
/// killed or a host's link is cut, after which resuming completes. Needs root (CI runs as root).
final class MultiHostTests: XCTestCase {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/netns-cluster.sh").path
    var dir: URL!

    func cluster(_ arguments: [String], timeout: Double = 300) throws -> Run {
        try Harness.run("/bin/bash", [Self.script] + arguments, timeout: timeout)
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
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: hosts.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual(config?["ranks"] as? Int, 4)
        XCTAssertEqual(config?["blasThreadsPerRank"] as? Int, max(1, ProcessInfo.processInfo.activeProcessorCount / 2), "2 ranks per host share its cores")
        XCTAssertEqual(try Harness.aetrain(small + ["--iterations", "200", "--out", alone.path]).status, 0)
        XCTAssertLessThan(try Harness.relativeDifference(alone, hosts), 0.02)
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
