import AETrainCore
import Foundation
import XCTest

/// The built binary as one process: outputs, formats, --init, data types.
final class TrainBinaryTests: XCTestCase {
    func testDefaultRunWritesEverything() throws {
        let out = try Harness.temporaryDirectory("default")
        defer { try? FileManager.default.removeItem(at: out) }
        // No subcommand means `train`; no --data means the embedded faces.
        let r = try Harness.aetrain(["--out", out.path, "--iterations", "21", "--log-every", "10", "--lambda", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // The sheet's table: '%7s %8s %8s %8s %8s' then '%7d %8.2f %8.2f %8.2f %8.2f'.
        // aetrain's own columns follow the sheet's, after a bar.
        XCTAssertTrue(lines.contains { $0.hasPrefix("   nbit      rec      spa      ent      reg |") }, r.stdout)
        let rows = lines.filter { $0.range(of: #"^ {0,6}\d+( +\d+\.\d\d){4} \|"#, options: .regularExpression) != nil }
        XCTAssertEqual(rows.count, 3, r.stdout)
        XCTAssertTrue(rows.allSatisfy { $0.firstIndex(of: "|") == $0.index($0.startIndex, offsetBy: 7 + 4 * 9 + 1) }, "column widths")
        XCTAssertTrue(rows[0].hasPrefix("      0   625.00"), "standardized 25x25 data: rec at step 0 is d = 625: \(rows[0])")

        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0 != ".lock" }
        XCTAssertEqual(Set(files.filter { !$0.hasPrefix("events.out.tfevents.") }), Set(["V.npy", "W.npy", "b.npy", "a.npy", "model.safetensors", "filters.png", "activations.npy", "mean.npy", "config.json", "metrics.jsonl", "dataset.png", "checkpoints",
                                                                                               "feature_density.svg", "feature_density.npy"]))
        XCTAssertEqual(files.filter { $0.hasPrefix("events.out.tfevents.") }.count, 1, "one TensorBoard event file")
        // Weights readable by numpy, with the documented shapes.
        let py = try Harness.python("""
            import numpy as np, sys
            d = '\(out.path)'
            for name, shape in [('V', (625, 400)), ('W', (400, 625)), ('b', (400,)), ('a', (625,))]:
                x = np.load(f'{d}/{name}.npy')
                assert x.dtype == np.float32 and x.shape == shape, (name, x.dtype, x.shape)
                assert np.isfinite(x).all()
            print('ok')
            """)
        XCTAssertEqual(py.stdout, "ok\n")

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual(config?["ranks"] as? Int, 1)
        let dataset = config?["dataset"] as? [String: Any]
        XCTAssertEqual(dataset?["examples"] as? Int, 100)
        XCTAssertEqual((dataset?["fingerprint"] as? String)?.count, 16)
        let settings = config?["settings"] as? [String: Any]
        XCTAssertEqual(settings?["hidden"] as? Int, 400)
        XCTAssertEqual((settings?["objective"] as? [String: Any])?["epsilon"] as? Double, 0.01)

        let metrics = try Harness.metrics(out)
        XCTAssertEqual(metrics.map { $0["iteration"] as? Int }, [0, 10, 20])
        // Start-up (process start to the first iteration), in the first line only.
        let toFirstStep = metrics.first?["seconds_to_first_step"] as? Double ?? .nan
        XCTAssertTrue(toFirstStep > 0 && toFirstStep < (metrics.last?["seconds"] as? Double ?? 0) + 60, "\(toFirstStep)")
        XCTAssertTrue(metrics.dropFirst().allSatisfy { $0["seconds_to_first_step"] == nil })
        for m in metrics {
            for key in ["rec", "spa", "ent", "reg", "loss", "seconds", "l0", "explained_variance",
                        "compute_seconds", "communication_seconds", "optimizer_seconds"] { XCTAssertNotNil(m[key] as? Double, key) }
            XCTAssertNotNil(m["dead_units"] as? Int)
            XCTAssertGreaterThan(m["compute_seconds"] as? Double ?? 0, 0)
            XCTAssertLessThanOrEqual(m["l0"] as? Double ?? .nan, 400)
            let (rec, spa, ent, reg, loss) = (m["rec"] as! Double, m["spa"] as! Double, m["ent"] as! Double, m["reg"] as! Double, m["loss"] as! Double)
            XCTAssertEqual(loss, rec + spa + 0.01 * ent + reg, accuracy: 1e-6 * loss)
        }
    }

    func testInitStartsFromEarlierWeightsAndChecksShapes() throws {
        let first = try Harness.temporaryDirectory("init-a"), second = try Harness.temporaryDirectory("init-b")
        defer { try? FileManager.default.removeItem(at: first); try? FileManager.default.removeItem(at: second) }
        XCTAssertEqual(try Harness.aetrain(["train", "--out", first.path, "--iterations", "200", "--log-every", "199"]).status, 0)
        let last = try Harness.metrics(first).last?["rec"] as? Double ?? 0
        let r = try Harness.aetrain(["train", "--init", first.path, "--out", second.path, "--iterations", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let resumed = try Harness.metrics(second).first?["rec"] as? Double ?? .nan
        // The embedded dataset is one batch of 100, so the next step sees the same examples.
        XCTAssertLessThan(resumed, last * 1.05)
        XCTAssertLessThan(resumed, 600)

        let bad = try Harness.aetrain(["train", "--init", first.path, "--hidden", "300", "--out", second.path, "--iterations", "1"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.errorLines.count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("h = 400") && bad.stderr.contains("h = 300"), bad.stderr)
    }

    /// N×D uint8 and float64 files written by numpy train with --image-shape.
    func testNumpyUInt8AndFloat64Data() throws {
        let dir = try Harness.temporaryDirectory("dtypes")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Harness.python("""
            import numpy as np
            rng = np.random.default_rng(0)
            np.save('\(dir.path)/u8.npy', rng.integers(0, 256, size=(40, 48), dtype=np.uint8))
            np.save('\(dir.path)/f8.npy', rng.normal(size=(40, 6, 8)))
            """)
        for (file, extra) in [("u8.npy", ["--image-shape", "6x8"]), ("f8.npy", [])] {
            let out = dir.appendingPathComponent("out-\(file)")
            let r = try Harness.aetrain(["train", "--data", dir.appendingPathComponent(file).path, "--out", out.path,
                                         "--iterations", "5", "--hidden", "16", "--batch-size", "40"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            // Standardized data (the mean example subtracted, divided by the standard deviation
            // of all entries): the mean of ‖x‖² over all N examples is exactly d = 48. The batch
            // holds all 40, and at step 0 (W = 0, a = 0) rec is that mean, up to float rounding.
            let rec = try Harness.metrics(out).first?["rec"] as? Double ?? 0
            XCTAssertEqual(rec, 48, accuracy: 1e-4 * 48, file)
        }
        // Without --image-shape, N×D rows are vectors: the run trains and writes no images.
        let x = dir.appendingPathComponent("x")
        let noShape = try Harness.aetrain(["train", "--data", dir.appendingPathComponent("u8.npy").path, "--out", x.path,
                                           "--iterations", "5", "--hidden", "16", "--batch-size", "10"])
        XCTAssertEqual(noShape.status, 0, noShape.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: x.path).filter { $0.hasSuffix(".png") }, [])
    }

    func testDivergenceStopsWithFiniteWeights() throws {
        let out = try Harness.temporaryDirectory("diverge")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try Harness.aetrain(["train", "--out", out.path, "--lr", "1e30", "--iterations", "50", "--log-every", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.range(of: #"non-finite at iteration \d+ \((rec|spa|ent|reg) = "#, options: .regularExpression) != nil, r.stderr)
        let weights = try ModelWeights.load(from: out)  // throws on any non-finite value
        XCTAssertEqual(weights.shape, ModelShape(d: 625, h: 400))
    }

    func testBenchPrintsFiguresAsJSON() throws {
        let r = try Harness.aetrain(["bench", "--examples", "400", "--steps", "20", "--warmup", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let step = object?["ms_per_step"] as? Double ?? 0, floor = object?["gemm_floor_ms"] as? Double ?? 0
        XCTAssertGreaterThan(step, 0)
        XCTAssertGreaterThan(floor, 0)
        XCTAssertEqual(object?["d"] as? Int, 1036)
        XCTAssertEqual(object?["hidden"] as? Int, 400)
        XCTAssertGreaterThan((object?["peak_rss_mb_per_rank"] as? [Double])?.first ?? 0, 10)
        XCTAssertGreaterThan(object?["seconds_to_first_step"] as? Double ?? 0, 0)

        // The sweep under mpirun: six shapes, one peak RSS per rank.
        let sweep = try Harness.mpirun(2, ["bench", "--examples", "1700", "--steps", "10", "--warmup", "1", "--sweep", "--json"])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        let all = try JSONSerialization.jsonObject(with: Data(sweep.stdout.utf8)) as? [String: Any]
        let results = all?["results"] as? [[String: Any]] ?? []
        XCTAssertEqual(results.map { "\($0["batch_size"] ?? "")x\($0["hidden"] ?? "")" },
                       ["100x400", "400x400", "1600x400", "100x1600", "400x1600", "1600x1600"])
        XCTAssertTrue(results.allSatisfy { ($0["ms_per_step"] as? Double ?? 0) > 0 && ($0["gemm_floor_ms"] as? Double ?? 0) > 0 })
        XCTAssertEqual((all?["peak_rss_mb_per_rank"] as? [Double])?.count, 2)
    }

    /// The allreduce benchmark behind docs/scaling.md's model.
    func testAllreduceBenchmark() throws {
        let r = try Harness.mpirun(2, ["bench", "--allreduce", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["ranks"] as? Int, 2)
        XCTAssertGreaterThan(object?["alpha_ms"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(object?["ms_per_mb"] as? Double ?? 0, 0)
        let points = object?["points"] as? [[Double]] ?? []
        XCTAssertEqual(points.map { $0.first ?? 0 }, [1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216])
        XCTAssertTrue(points.allSatisfy { ($0.last ?? 0) > 0 })
    }

    /// Not a terminal: table lines only, no live progress line; --quiet: nothing on stdout.
    func testConsoleOutputModes() throws {
        let out = try Harness.temporaryDirectory("console")
        defer { try? FileManager.default.removeItem(at: out) }
        let plain = try Harness.aetrain(["train", "--out", out.path, "--iterations", "30", "--log-every", "10"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertFalse(plain.stdout.contains("\r") || plain.stdout.contains("steps/s"), "no live line when not a terminal")
        let ranks = try Harness.mpirun(2, ["train", "--overwrite", "--out", out.path, "--iterations", "300", "--log-every", "100"])
        XCTAssertEqual(ranks.status, 0, ranks.stderr)
        XCTAssertFalse(ranks.stdout.contains("steps/s"), "no live line under mpirun (its pty is not the user's terminal)")
        let quiet = try Harness.aetrain(["train", "--quiet", "--overwrite", "--out", out.path, "--iterations", "30", "--log-every", "10"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stdout, "")
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(try Harness.metrics(out).count, 4, "metrics are still written")
    }

    func testHelpAndBadFlags() throws {
        let help = try Harness.aetrain(["train", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--lambda") && help.stdout.contains("--image-shape"), help.stdout)
        XCTAssertFalse(help.stdout.contains("debug"), "test hooks stay hidden")
        for args in [["--batch-size", "0"], ["--lr", "-1"], ["--iterations", "0"], ["--image-shape", "3by4"], ["--hidden", "-4"], ["--nonsense"]] {
            let r = try Harness.aetrain(["train", "--out", "/nonexistent/never"] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") || $0.hasPrefix("error:") }.count, 1, "\(args): \(r.stderr)")
        }
    }
}
