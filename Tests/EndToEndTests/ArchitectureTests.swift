import AETrainCore
import Foundation
import XCTest

/// topk, batchtopk and jumprelu through the binary: their flags and refusals, their files and
/// logged terms, exact resume (dead-latent counters, batchtopk's θ, jumprelu's θ), ranks under
/// mpirun, and AuxK reviving dead latents.
final class ArchitectureTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("architectures") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let small = ["--data", "synthetic:400,4,4", "--hidden", "32", "--batch-size", "20", "--quiet"]

    func flags(_ activation: String) -> [String] {
        switch activation {
        case "jumprelu": ["--activation", "jumprelu", "--lambda", "0.01", "--lr", "1e-3", "--dead-steps", "50"]
        default: ["--activation", activation, "--k", "4", "--aux-k", "8", "--dead-steps", "50", "--lr", "1e-3"]
        }
    }

    func bytes(_ run: URL, _ name: String) throws -> Data { try Data(contentsOf: run.appendingPathComponent(name)) }

    /// Stopped at 1050 and resumed to 1200 equals 1200 uninterrupted, file for file: batchtopk's θ
    /// starts moving at step 1000, so the checkpoint carries a set θ.
    func testExactResumeForEachArchitecture() throws {
        for activation in ["topk", "batchtopk", "jumprelu"] {
            let whole = dir.appendingPathComponent("\(activation)-whole"), split = dir.appendingPathComponent("\(activation)-split")
            let common = ["train"] + small + flags(activation) + ["--log-every", "100", "--checkpoint-every", "0"]
            let a = try Harness.aetrain(common + ["--iterations", "1200", "--out", whole.path])
            XCTAssertEqual(a.status, 0, a.stderr)
            let b = try Harness.aetrain(common + ["--iterations", "1050", "--out", split.path])
            XCTAssertEqual(b.status, 0, b.stderr)
            let c = try Harness.aetrain(["train", "--quiet", "--resume", split.path, "--iterations", "1200"])
            XCTAssertEqual(c.status, 0, c.stderr)
            var files = ["V.npy", "W.npy", "b.npy", "a.npy", "model.safetensors"]
            if activation != "topk" { files.append("threshold.npy") }
            for f in files { XCTAssertEqual(try bytes(split, f), try bytes(whole, f), "\(activation): \(f) after resume") }
            let last = try XCTUnwrap(Harness.metrics(whole).last), resumed = try XCTUnwrap(Harness.metrics(split).last)
            for key in ["rec", "loss", "dead_units", "never_fired_units", "l0"] {
                XCTAssertEqual("\(last[key] ?? "-")", "\(resumed[key] ?? "-")", "\(activation): \(key) after resume")
            }
            if activation == "batchtopk" {
                let theta = try Harness.python("import numpy as np; t = np.load('\(whole.path)/threshold.npy'); print(t.dtype, t.shape, float(t.min()) > 0, float(t.min()) == float(t.max()))")
                XCTAssertEqual(theta.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "float32 (32,) True True")
            }
        }
    }

    /// The files and the logged terms of each architecture.
    func testFilesAndLoggedTerms() throws {
        for activation in ["topk", "batchtopk", "jumprelu"] {
            let out = dir.appendingPathComponent(activation)
            let r = try Harness.aetrain(["train"] + small + flags(activation) + ["--iterations", "60", "--log-every", "20",
                                                                                   "--eval-fraction", "0.1", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let script = """
                import json, numpy as np
                from safetensors.numpy import load_file
                t = load_file('\(out.path)/model.safetensors')
                print(sorted(t.keys()))
                import os
                print(os.path.exists('\(out.path)/threshold.npy'))
                line = [json.loads(l) for l in open('\(out.path)/metrics.jsonl')][-1]
                print(sorted(k for k in ('auxk', 'dead_units', 'never_fired_units', 'eval_l0', 'spa', 'ent') if k in line))
                """
            let p = try Harness.python(script)
            let lines = p.stdout.split(separator: "\n").map(String.init)
            switch activation {
            case "topk":
                XCTAssertEqual(lines, ["['V', 'W', 'a', 'b']", "False", "['auxk', 'dead_units', 'eval_l0', 'never_fired_units']"])
            case "batchtopk":
                XCTAssertEqual(lines, ["['V', 'W', 'a', 'b', 'threshold']", "True", "['auxk', 'dead_units', 'eval_l0', 'never_fired_units']"])
            default:
                XCTAssertEqual(lines, ["['V', 'W', 'a', 'b', 'threshold']", "True", "['dead_units', 'eval_l0', 'never_fired_units']"])
            }
            let events = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("events.out.tfevents.") }
            let event = try Data(contentsOf: out.appendingPathComponent(try XCTUnwrap(events.first)))
            XCTAssertEqual(event.range(of: Data("sparsity/dead_units".utf8)) != nil, true)
            XCTAssertEqual(event.range(of: Data("losses/auxk".utf8)) != nil, activation != "jumprelu", "\(activation): AuxK in TensorBoard")
        }
    }

    /// One line, nonzero exit, for a flag the architecture does not read or a bad value.
    func testRefusals() throws {
        let cases: [([String], String)] = [
            (["--k", "8"], "--k does not apply to --activation relu"),
            (["--activation", "topk", "--lambda", "1"], "--lambda does not apply to --activation topk"),
            (["--activation", "jumprelu", "--eps", "0.1"], "--eps does not apply to --activation jumprelu"),
            (["--activation", "jumprelu", "--aux-k", "4"], "--aux-k does not apply to --activation jumprelu"),
            (["--activation", "topk", "--k", "0"], "--k must be in 1 … h = 32, got 0"),
            (["--activation", "batchtopk", "--dead-steps", "0"], "--dead-steps must be positive, got 0"),
            (["--dead-steps", "0"], "--dead-steps must be positive, got 0"),
            (["--precision", "bf17"], "--precision"),
            (["--activation", "jumprelu", "--bandwidth", "0"], "--bandwidth must be positive, got 0"),
            (["--model", "tied-linear", "--activation", "topk"], "--activation does not apply to the tied-linear model"),
        ]
        for (extra, message) in cases {
            let r = try Harness.aetrain(["train"] + small + ["--iterations", "2", "--out", dir.appendingPathComponent("refused").path] + extra)
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertTrue(r.stderr.contains(message), "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(extra): one line: \(r.stderr)")
        }
        let out = dir.appendingPathComponent("topk")
        XCTAssertEqual(try Harness.aetrain(["train"] + small + flags("topk") + ["--iterations", "20", "--out", out.path]).status, 0)
        let other = try Harness.aetrain(["train", "--resume", out.path, "--activation", "batchtopk"])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("--activation batchtopk here, topk in the checkpoint"), other.stderr)
    }

    /// --deterministic: batchtopk (the distributed selection) gives the same bytes on 1, 2 and 4
    /// ranks under mpirun; without it, topk on 2 ranks follows one process to rounding.
    func testRanksUnderMPI() throws {
        var reference: [Data] = []
        for ranks in [1, 2, 4] {
            let out = dir.appendingPathComponent("det\(ranks)")
            let r = try Harness.mpirun(ranks, ["train"] + small + flags("batchtopk") + ["--iterations", "40", "--deterministic", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let files = try ["V.npy", "W.npy", "b.npy", "a.npy"].map { try bytes(out, $0) }
            if reference.isEmpty { reference = files } else { XCTAssertEqual(files, reference, "\(ranks) ranks") }
        }
        let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
        XCTAssertEqual(try Harness.aetrain(["train"] + small + flags("topk") + ["--iterations", "40", "--out", one.path]).status, 0)
        let r = try Harness.mpirun(2, ["train"] + small + flags("topk") + ["--iterations", "40", "--out", two.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertLessThan(try Harness.relativeDifference(one, two), 1e-3)
    }

    /// A deliberately bad start: half the latents' encoder columns shrunk 100-fold, so they
    /// lose every TopK and die. AuxK gives them the residual to reconstruct.
    /// - Free decoder rows (`--decoder-norm none`): fewer latents are dead at the end
    ///   (77 against 88 when written).
    /// - Unit-norm rows (topk's default): fewer latents never fire (57 against 65), but the
    ///   revived ones die again about as often, so the end's 20-step dead count is not lower
    ///   (95 against 91); that is asserted nowhere, and is the open question it looks like.
    func testAuxKRevivesDeadLatents() throws {
        let initial = dir.appendingPathComponent("init")
        try FileManager.default.createDirectory(at: initial, withIntermediateDirectories: true)
        _ = try Harness.python("""
            import numpy as np
            rng = np.random.default_rng(0); d, h = 64, 128
            V = (rng.normal(size=(d, h)) / np.sqrt(d)).astype(np.float32); V[:, :h // 2] *= 0.01
            for name, a in [('V', V), ('W', np.zeros((h, d), np.float32)), ('b', np.zeros(h, np.float32)), ('a', np.zeros(d, np.float32))]:
                np.save('\(initial.path)/' + name + '.npy', a)
            """)
        func last(_ norm: String, auxK: String) throws -> (dead: Int, never: Int) {
            let out = dir.appendingPathComponent("aux\(auxK)-\(norm)")
            let r = try Harness.aetrain(["train", "--init", initial.path, "--activation", "topk", "--k", "4", "--aux-k", auxK, "--aux-coef", "1",
                                         "--dead-steps", "20", "--iterations", "601", "--log-every", "200", "--lr", "1e-3",
                                         "--decoder-norm", norm,
                                         "--batch-size", "64", "--data", "synthetic:2000,8,8", "--quiet", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = try XCTUnwrap(Harness.metrics(out).last)
            return (try XCTUnwrap(line["dead_units"] as? Int), try XCTUnwrap(line["never_fired_units"] as? Int))
        }
        let free = (with: try last("none", auxK: "32"), without: try last("none", auxK: "0"))
        XCTAssertGreaterThan(free.without.dead, 40, "the bad start kills latents")
        XCTAssertLessThan(free.with.dead, free.without.dead - 5, "free rows: with AuxK \(free.with.dead) dead, without \(free.without.dead)")
        let unit = (with: try last("unit", auxK: "32"), without: try last("unit", auxK: "0"))
        XCTAssertLessThan(unit.with.never, unit.without.never - 3,
                          "unit rows: with AuxK \(unit.with.never) never fired, without \(unit.without.never)")
    }

    /// relu counts dead units since the previous log line (the sheet's table) unless given
    /// --dead-steps N, then over the last N steps, like the other activations; the trajectory is
    /// the same either way. A window of 1 step holds fewer firings than the 100 steps since the
    /// last log line, so it counts at least as many dead; a window of 100 steps is the interval
    /// between log lines 100 … 500, so there it counts as the sheet's table does. Units die here
    /// (λ = 10 without the entropy term, batches of 10).
    func testReluCountsDeadUnitsOverDeadStepsWhenGiven() throws {
        let dir = try Harness.temporaryDirectory("relu-dead-steps")
        func train(_ name: String, _ extra: [String], iterations: Int = 600) throws -> URL {
            let out = dir.appendingPathComponent(name)
            let r = try Harness.aetrain(["train", "--lambda", "10", "--eps", "0", "--eta", "0", "--lr", "1e-3", "--batch-size", "10",
                                         "--iterations", "\(iterations)", "--log-every", "100", "--quiet", "--out", out.path] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return out
        }
        let sheet = try train("sheet", []), one = try train("one", ["--dead-steps", "1"]), hundred = try train("hundred", ["--dead-steps", "100"])
        XCTAssertEqual(try Data(contentsOf: sheet.appendingPathComponent("V.npy")), try Data(contentsOf: one.appendingPathComponent("V.npy")),
                       "the window changes the count, not the training")
        let (s, o, h) = (try Harness.metrics(sheet), try Harness.metrics(one), try Harness.metrics(hundred))
        XCTAssertEqual(s.count, 7)
        XCTAssertEqual(o.count, 7)
        XCTAssertEqual(h.count, 7)
        var differed = false
        for ((x, y), z) in zip(zip(s, o), h) {
            let at = "iteration \(x["iteration"] ?? "?")"
            let (since, window) = (try XCTUnwrap(x["dead_units"] as? Int), try XCTUnwrap(y["dead_units"] as? Int))
            XCTAssertGreaterThanOrEqual(window, since, at)
            differed = differed || window > since
            XCTAssertNil(x["never_fired_units"], "\(at): the sheet's lines keep their keys")
            XCTAssertNotNil(y["never_fired_units"], at)
            if let i = x["iteration"] as? Int, (100...500).contains(i) { XCTAssertEqual(z["dead_units"] as? Int, since, at) }
        }
        XCTAssertTrue(differed, "a window of 1 step counted as the 100 steps since the last line did")
        XCTAssertGreaterThan(o.last?["dead_units"] as? Int ?? 0, 0, "no unit died")
        // A resume continues the window from the checkpoint's counters: as one run of 700.
        let r = try Harness.aetrain(["train", "--resume", hundred.path, "--iterations", "700", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let whole = try train("whole", ["--dead-steps", "100"], iterations: 700)
        XCTAssertEqual(try Harness.metrics(hundred).last?["dead_units"] as? Int, try Harness.metrics(whole).last?["dead_units"] as? Int)
        XCTAssertEqual(try Harness.metrics(hundred).last?["iteration"] as? Int, 699)
    }
}
