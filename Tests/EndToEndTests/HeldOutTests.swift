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
                ev = 1 - (r ** 2).sum() / ((h - h.mean(axis=0)) ** 2).sum()   # about the held-out rows' mean
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

    /// The held-out rows are never drawn: a run with `--eval-fraction 0.5` and a run on a file
    /// holding only its training rows (written by numpy, in their order) write the same bytes.
    /// That holds by design on one rank: the normalization's statistics come from the training
    /// rows alone, summed in the same order; the sampler's draws depend only on the number of
    /// training rows and the seed, and its position p is training row p in both runs. Had
    /// training drawn a held-out row, or counted one in the statistics, the weights would differ.
    func testTrainingNeverSeesTheHeldOutRows() throws {
        let split = dir.appendingPathComponent("split"), alone = dir.appendingPathComponent("alone")
        let schedule = ["--quiet", "--batch-size", "20", "--iterations", "30", "--log-every", "10", "--seed", "5"]
        let r = try Harness.aetrain(["train", "--eval-fraction", "0.5", "--out", split.path] + schedule)
        XCTAssertEqual(r.status, 0, r.stderr)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: split.appendingPathComponent("config.json"))) as? [String: Any]
        let rows = config?["heldOutRows"] as? [Int] ?? []
        XCTAssertEqual(rows.count, 50)
        XCTAssertEqual(rows, rows.sorted())
        XCTAssertEqual(Set(rows).count, 50)
        XCTAssertTrue(rows.allSatisfy { (0..<100).contains($0) }, "\(rows)")
        let training = dir.appendingPathComponent("training.npy")
        _ = try Harness.python("""
            import numpy as np
            x = np.load("\(Harness.embeddedFaces)")
            held = \(rows)
            keep = [i for i in range(len(x)) if i not in set(held)]
            assert len(keep) == 50
            np.save("\(training.path)", x[keep])
            """)
        let t = try Harness.aetrain(["train", "--data", training.path, "--out", alone.path] + schedule)
        XCTAssertEqual(t.status, 0, t.stderr)
        for name in ["V.npy", "W.npy", "b.npy", "a.npy", "mean.npy"] {
            XCTAssertEqual(try Data(contentsOf: split.appendingPathComponent(name)), try Data(contentsOf: alone.appendingPathComponent(name)),
                           "\(name): the run with held-out rows differs from the run on its training rows alone")
        }
        let (a, b) = (try Harness.metrics(split), try Harness.metrics(alone))
        XCTAssertEqual(a.map { $0["iteration"] as? Int }, [0, 10, 20, 29])
        XCTAssertEqual(a.map { $0["rec"] as? Double }, b.map { $0["rec"] as? Double }, "the same training batches")
        // config.json records the split the seed chose; another seed holds out other rows.
        XCTAssertEqual(HeldOutSplit(examples: 100, fraction: 0.5, seed: 5).heldOut, rows)
        XCTAssertNotEqual(HeldOutSplit(examples: 100, fraction: 0.5, seed: 6).heldOut, rows, "the seed chooses")
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
