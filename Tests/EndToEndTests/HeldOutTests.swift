import AETrainCore
import Foundation
import XCTest

/// `--eval-fraction`: a seed-chosen set of examples that training never sees, evaluated over
/// all of them at every log line, distributed; checked against numpy on the written weights.
final class HeldOutTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("heldout") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testHeldOutTermsMatchNumpyAndAgreeAcrossRanks() throws {
        var last: [[String: Any]] = []
        for ranks in [1, 2] {
            let out = dir.appendingPathComponent("r\(ranks)")
            let r = try Harness.mpirun(ranks, ["train", "--lambda", "1", "--eval-fraction", "0.2", "--batch-size", "50", "--iterations", "400", "--log-every", "100",
                                               "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains(" |   e.rec     e.L0   e.dead     e.EV"), r.stdout)
            let lines = try Harness.metrics(out)
            XCTAssertEqual(lines.count, 5)
            for line in lines {
                for key in ["eval_rec", "eval_l0", "eval_dead_units", "eval_explained_variance"] { XCTAssertNotNil(line[key], key) }
            }
            last.append(lines.last ?? [:])
            // numpy, from the raw embedded faces, the sheet's standardization and the final weights.
            let check = try Harness.python("""
                import json, numpy as np
                run = "\(out.path)"
                config = json.load(open(f"{run}/config.json"))
                rows = config["heldOutRows"]
                assert len(rows) == 20 and rows == sorted(set(rows)), rows
                x = np.load("\(Harness.embeddedFaces)").reshape(100, -1).astype(np.float64)
                t = x[[i for i in range(100) if i not in rows]]
                x = (x - t.mean(axis=0)) / (t - t.mean(axis=0)).std()
                V, W, b, a = (np.load(f"{run}/{n}.npy").astype(np.float64) for n in "VWba")
                h = x[rows]
                z = np.maximum(0, h @ V + b)
                r = z @ W + a - h
                line = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][-1]
                rec = (r ** 2).sum(axis=1).mean()
                ev = 1 - (r ** 2).sum() / (h ** 2).sum()
                l0 = (z > 0).sum(axis=1).mean()
                dead = int(((z > 0).sum(axis=0) == 0).sum())
                assert abs(line["eval_rec"] - rec) <= 1e-4 * max(1, rec), (line["eval_rec"], rec)
                assert abs(line["eval_explained_variance"] - ev) <= 1e-5, (line["eval_explained_variance"], ev)
                assert abs(line["eval_l0"] - l0) <= 1e-9 and line["eval_dead_units"] == dead, (line, l0, dead)
                print("ok", rec, line["rec"])
                """)
            XCTAssertTrue(check.stdout.hasPrefix("ok"), check.stdout + check.stderr)
        }
        let a = last[0]["eval_rec"] as? Double ?? -1, b = last[1]["eval_rec"] as? Double ?? -2
        XCTAssertEqual(a, b, accuracy: 0.02 * a, "1 and 2 ranks follow the same trajectory")
    }

    /// The held-out rows are never drawn: training on the other rows alone gives the same run.
    func testTrainingNeverSeesTheHeldOutRows() throws {
        let out = dir.appendingPathComponent("split")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--eval-fraction", "0.5", "--batch-size", "50", "--iterations", "5", "--out", out.path]).status, 0)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
        let rows = config?["heldOutRows"] as? [Int] ?? []
        XCTAssertEqual(rows.count, 50)
        let split = HeldOutSplit(examples: 100, fraction: 0.5, seed: 0)
        XCTAssertEqual(split.heldOut, rows)
        XCTAssertEqual(Set(split.training.map(Int.init)).intersection(rows), [])
        XCTAssertEqual(split.training.count + rows.count, 100)
        XCTAssertNotEqual(HeldOutSplit(examples: 100, fraction: 0.5, seed: 1).heldOut, rows, "the seed chooses")
    }

    func testBadFractionsAreRefused() throws {
        for (fraction, message) in [("0.7", "--eval-fraction must be in (0, 0.5], got 0.7"), ("0", "--eval-fraction must be in (0, 0.5], got 0.0")] {
            let r = try Harness.aetrain(["train", "--eval-fraction", fraction])
            XCTAssertEqual(r.status, 64)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
        let few = try Harness.aetrain(["train", "--eval-fraction", "0.5", "--batch-size", "60", "--out", dir.appendingPathComponent("few").path])
        XCTAssertEqual(few.status, 1)
        XCTAssertEqual(few.errorLines, ["error: --batch-size 60 is larger than the 50 training examples (50 held out); batches are drawn without replacement"])
        let sc = try Harness.aetrain(["train", "--model", "sparse-coding", "--eval-fraction", "0.1"])
        XCTAssertEqual(sc.status, 64)
        XCTAssertTrue(sc.stderr.contains("--eval-fraction does not apply to the sparse-coding model"), sc.stderr)
    }
}
