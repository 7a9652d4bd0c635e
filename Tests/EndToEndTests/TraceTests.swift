import Foundation
import XCTest

/// `train --trace` and `bench --trace`, as one process and as 2 ranks: the file is Chrome
/// trace-event JSON that Python's json reads, every rank is a process, spans nest, the step's
/// children cover the step, and the ranks' timelines share one clock.
///
/// (The `perfetto` package's TraceProcessor would be a stronger reader, but it downloads its
/// binary at first use, which this machine's sandbox cannot; the checks below are structural.)
final class TraceTests: XCTestCase {
    /// Checks `file` in Python; `ranks` processes, `names` must appear.
    func check(_ file: URL, ranks: Int, names: [String], minSteps: Int) throws {
        let r = try Harness.python("""
            import json, statistics
            d = json.load(open('\(file.path)'))
            ev = d['traceEvents']
            procs = {e['pid']: e['args']['name'] for e in ev if e['ph'] == 'M' and e['name'] == 'process_name'}
            assert procs == {r: f'rank {r}' for r in range(\(ranks))}, procs
            xs = [e for e in ev if e['ph'] == 'X']
            assert all(e['dur'] >= 0 and e['ts'] >= 0 and e['pid'] in procs and e['tid'] == 0 for e in xs)
            names = {e['name'] for e in xs}
            missing = set(\(names)) - names
            assert not missing, f'missing spans: {missing}'
            steps = {}
            for pid in procs:
                mine = sorted((e for e in xs if e['pid'] == pid), key=lambda e: (e['ts'], -e['dur']))
                # Nesting: each span lies inside the one open around it, or after it.
                stack = []
                for e in mine:
                    while stack and e['ts'] >= stack[-1]['ts'] + stack[-1]['dur']:
                        stack.pop()
                    if stack:
                        p = stack[-1]
                        assert e['ts'] + e['dur'] <= p['ts'] + p['dur'] + 1e-6, f"{e['name']} overlaps {p['name']} on rank {pid}"
                        if 'step' in e.get('args', {}):
                            assert p['args']['step'] == e['args']['step'], (e, p)
                        e['parent'] = p
                    else:
                        assert e['name'] in ('step', 'log line', 'checkpoint'), f"{e['name']} outside any step on rank {pid}"
                    stack.append(e)
                st = [e for e in mine if e['name'] == 'step']
                assert len(st) >= \(minSteps), len(st)
                steps[pid] = {e['args']['step']: e for e in st}
                # Coverage: the step's direct children, and the gaps between them.
                covered = total = 0
                worst_gaps = []
                for s in st:
                    kids = sorted((e for e in mine if e.get('parent') is s), key=lambda e: e['ts'])
                    assert kids, f"step {s['args']['step']} has no children"
                    covered += sum(k['dur'] for k in kids)
                    total += s['dur']
                    edges = [s['ts']] + [x for k in kids for x in (k['ts'], k['ts'] + k['dur'])] + [s['ts'] + s['dur']]
                    worst_gaps.append(max(edges[i + 1] - edges[i] for i in range(0, len(edges), 2)))
                assert covered >= 0.9 * total, f'rank {pid}: children cover {covered / total:.3f} of the steps'
                small = sum(g <= 100 for g in worst_gaps) / len(worst_gaps)
                assert small >= 0.9, f'rank {pid}: only {small:.2f} of steps have no gap over 100 µs'
                print(pid, len(st), round(covered / total, 4), statistics.median(worst_gaps))
            # One clock: step k of every rank overlaps step k of rank 0 (they meet in allreduces).
            for pid in procs:
                for k, s in steps[pid].items():
                    z = steps[0][k]
                    assert s['ts'] < z['ts'] + z['dur'] and z['ts'] < s['ts'] + s['dur'], (pid, k)
            """)
        print(r.stdout)
    }

    static let stepNames = ["step", "batch rows", "encoder forward", "X V", "allreduce column sums", "entropy", "decoder forward", "Z W",
                            "decoder backward", "Zᵀ G", "encoder backward", "G Wᵀ", "Xᵀ G_P", "regularizer", "Adam"]

    static let sharedMemoryNames = ["gradient barrier", "update barrier"]

    func testTrainWritesATimeline() throws {
        let dir = try Harness.temporaryDirectory("trace-train")
        defer { try? FileManager.default.removeItem(at: dir) }
        // 2 ranks on one node sum in shared memory unless told otherwise (`--gradient-sum`).
        for (ranks, overlap, sum) in [(1, "never", "auto"), (2, "never", "auto"), (2, "never", "allreduce"), (2, "always", "auto")] {
            let file = dir.appendingPathComponent("train-\(ranks)-\(overlap)-\(sum).json")
            let r = try Harness.mpirun(ranks, ["train", "--out", dir.appendingPathComponent("run-\(ranks)-\(overlap)-\(sum)").path,
                                               "--iterations", "60", "--log-every", "20", "--checkpoint-every", "30",
                                               "--overlap", overlap, "--gradient-sum", sum, "--trace", file.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let comm = overlap == "always" ? ["start allreduce dW", "progress", "finish allreduces"]
                : ranks > 1 && sum == "auto" ? Self.sharedMemoryNames : ["allreduce gradient"]
            try check(file, ranks: ranks, names: Self.stepNames + comm + ["log line", "checkpoint"], minSteps: 60)
        }
    }

    func testBenchWritesATimeline() throws {
        let dir = try Harness.temporaryDirectory("trace-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        for ranks in [1, 2] {
            let file = dir.appendingPathComponent("bench-\(ranks).json")
            let r = try Harness.mpirun(ranks, ["bench", "--examples", "2000", "--steps", "50", "--warmup", "5", "--trace", file.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            try check(file, ranks: ranks, names: Self.stepNames + (ranks > 1 ? Self.sharedMemoryNames : ["allreduce gradient"]), minSteps: 50)
        }
    }

    /// A trace into a directory that does not exist: one clear error before any work.
    func testTraceIntoAMissingDirectoryIsRefused() throws {
        let dir = try Harness.temporaryDirectory("trace-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Harness.mpirun(2, ["train", "--out", dir.appendingPathComponent("run").path, "--iterations", "5",
                                       "--trace", dir.appendingPathComponent("no/such/trace.json").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--trace"), r.stderr)
    }
}
