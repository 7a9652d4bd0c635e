import Foundation
import XCTest

/// deploy/frontier-grid.py (a grid of train runs → a table of held-out EV against L0),
/// deploy/frontier-plot.py (the table → an SVG) and the argument checks of
/// deploy/minilm-vectors.sh. The grid's relu part runs for real; the other architectures'
/// command lines are checked with --dry-run.
final class FrontierScriptsTests: XCTestCase {
    static let deploy = DeployScriptsTests.repository.appendingPathComponent("deploy")
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("frontier") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func script(_ name: String, _ args: [String]) throws -> Run {
        try Harness.run("/usr/bin/env", ["python3", Self.deploy.appendingPathComponent(name).path] + args, timeout: 300, directory: dir)
    }

    func testGridTrainsReluAndTabulatesTheHeldOutFigures() throws {
        _ = try ArchitectureFixture(in: dir)
        let args = ["--data", "vectors.npy", "--out", "grid", "--architectures", "relu", "--relu-lambdas", "0.1,2",
                    "--hidden", "16", "--iterations", "60", "--ranks", "2", "--aetrain", Harness.aetrain]
        let r = try script("frontier-grid.py", args)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote grid/frontier.svg"), r.stdout)
        let check = """
            import json, sys, xml.etree.ElementTree as ET
            d = sys.argv[1] + '/grid/'
            rows = [l.rstrip('\\n').split('\\t') for l in open(d + 'frontier.tsv')]
            assert rows[0] == ['architecture', 'setting', 'l0', 'heldout_ev', 'train_l0', 'train_ev', 'run'], rows[0]
            assert [r[:2] for r in rows[1:]] == [['relu', 'lambda0.1'], ['relu', 'lambda2']], rows
            for r in rows[1:]:
                last = [json.loads(l) for l in open(d + r[6] + '/metrics.jsonl') if l.strip()][-1]
                assert last['iteration'] == 59
                c = json.load(open(d + r[6] + '/config.json'))
                assert c['settings']['hidden'] == 16 and c['settings']['evalFraction'] == 0.1 and c['settings']['objective']['lambda'] == float(r[1][6:])
                assert c['ranks'] == 2
                assert abs(float(r[2]) - last['eval_l0']) <= 1e-5 * abs(last['eval_l0']), (r, last)
                assert abs(float(r[3]) - last['eval_explained_variance']) <= 1e-5 * abs(last['eval_explained_variance']) + 1e-12, (r, last)
            svg = ET.parse(d + 'frontier.svg').getroot()
            groups = [g for g in svg.iter('{http://www.w3.org/2000/svg}g') if g.get('data-architecture')]
            assert [g.get('data-architecture') for g in groups] == ['relu']
            points = [c for c in groups[0] if c.tag.endswith('circle') and c.find('{http://www.w3.org/2000/svg}title') is not None]
            assert len(points) == 2, len(points)   # the run's points (the legend's marker has no title)
            print('ok')
            """
        let p = try Harness.run("/usr/bin/env", ["python3", "-c", check, dir.path])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stdout.contains("ok"), p.stdout)

        // Again: the finished runs are kept, not retrained; an unfinished one is refused.
        let again = try script("frontier-grid.py", args)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout.components(separatedBy: "finished before, kept").count - 1, 2, again.stdout)
        try FileManager.default.removeItem(atPath: path("grid/runs/relu-lambda2/metrics.jsonl"))
        let broken = try script("frontier-grid.py", args)
        XCTAssertNotEqual(broken.status, 0)
        XCTAssertTrue(broken.stderr.contains("error: grid/runs/relu-lambda2 exists but did not finish"), broken.stderr)
    }

    /// The other architectures' runs use the training flags --activation, --k and --lambda.
    func testGridNamesEachArchitecturesFlags() throws {
        let r = try script("frontier-grid.py", ["--data", "x.npy", "--out", "g", "--dry-run", "--ranks", "1", "--topk-k", "8,32",
                                               "--batchtopk-k", "16", "--jumprelu-lambdas", "0.01", "--relu-lambdas", "1",
                                               "--train-args", "--normalize unit-norm", "--aetrain", "aetrain"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let common = "--hidden 2048 --iterations 4001 --eval-fraction 0.1 --seed 0"
        XCTAssertEqual(lines, [
            "aetrain train --quiet --data x.npy --out g/runs/relu-lambda1 \(common) --lambda 1 --normalize unit-norm",
            "aetrain train --quiet --data x.npy --out g/runs/topk-k8 \(common) --activation topk --k 8 --normalize unit-norm",
            "aetrain train --quiet --data x.npy --out g/runs/topk-k32 \(common) --activation topk --k 32 --normalize unit-norm",
            "aetrain train --quiet --data x.npy --out g/runs/batchtopk-k16 \(common) --activation batchtopk --k 16 --normalize unit-norm",
            "aetrain train --quiet --data x.npy --out g/runs/jumprelu-lambda0.01 \(common) --activation jumprelu --lambda 0.01 --normalize unit-norm",
        ])
        let bad = try script("frontier-grid.py", ["--data", "x.npy", "--out", "g", "--dry-run", "--architectures", "relu,gated"])
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("unknown architecture 'gated'"), bad.stderr)
    }

    func testPlotDrawsOneLinePerArchitectureInL0Order() throws {
        try """
            architecture\tsetting\tl0\theldout_ev
            relu\ta\t272\t0.847
            topk\tk64\t64\t0.88
            relu\tb\t21\t0.47
            topk\tk16\t16\t0.78
            batchtopk\tk32\t31\t0.85
            jumprelu\tl\t40\t0.86

            """.write(toFile: path("t.tsv"), atomically: true, encoding: .utf8)
        let r = try script("frontier-plot.py", ["t.tsv", "t.svg"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let check = """
            import sys, xml.etree.ElementTree as ET
            ns = '{http://www.w3.org/2000/svg}'
            svg = ET.parse(sys.argv[1]).getroot()
            groups = {g.get('data-architecture'): g for g in svg.iter(ns + 'g') if g.get('data-architecture')}
            assert sorted(groups) == ['batchtopk', 'jumprelu', 'relu', 'topk'], sorted(groups)
            pts = lambda a: [tuple(map(float, p.split(','))) for p in groups[a].find(ns + 'polyline').get('points').split()]
            relu, topk = pts('relu'), pts('topk')
            assert len(relu) == 2 and relu[0][0] < relu[1][0] and relu[0][1] > relu[1][1], relu   # L0 rises, EV rises (y down)
            assert topk[1][1] < relu[0][1], 'EV 0.88 above EV 0.47'
            print('ok')
            """
        let p = try Harness.run("/usr/bin/env", ["python3", "-c", check, path("t.svg")])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stdout.contains("ok"), p.stdout)

        try "architecture\tev\nrelu\t1\n".write(toFile: path("bad.tsv"), atomically: true, encoding: .utf8)
        let bad = try script("frontier-plot.py", ["bad.tsv", "bad.svg"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertEqual(bad.stderr.split(separator: "\n").map(String.init), ["error: bad.tsv: no column heldout_ev, l0 (header: architecture, ev)"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.svg")))
    }

    func testMiniLMScriptRefusesBadArgumentsBeforeInstalling() throws {
        let sh = Self.deploy.appendingPathComponent("minilm-vectors.sh").path
        let cases: [([String], String)] = [
            ([], "usage: deploy/minilm-vectors.sh OUT.npy [N]"),
            (["out.txt"], "out.txt: name a .npy file"),
            (["out.npy", "0"], "N must be a positive integer, got '0'"),
            (["out.npy", "many"], "N must be a positive integer, got 'many'"),
            (["nowhere/out.npy", "10"], "nowhere/out.npy: the directory nowhere does not exist"),
        ]
        for (args, expected) in cases {
            let r = try Harness.run("/bin/bash", [sh] + args, timeout: 30, environment: ["MINILM_VENV": path("venv")], directory: dir)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").map(String.init), ["error: " + expected], "\(args)")
            XCTAssertFalse(r.stdout.contains("installing"), "\(args)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("venv")))
    }
}
