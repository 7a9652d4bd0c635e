import Foundation
import XCTest

/// `--normalize` and `--eval-data`, against numpy and safetensors on the run's own files: the
/// recorded statistics, `encode`, the SAELens export on raw inputs, the held-out terms,
/// `--init` and `--resume`.
final class NormalizationTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("normalize") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Vectors with an offset, per-dimension scales and per-example norms that differ, so that
    /// every kind does something different: `vectors.npy` (240 × 36), `other.npy` (90 × 36, the
    /// same distribution) and `narrow.npy` (30 × 10).
    func makeData() throws {
        _ = try Harness.python("""
            import numpy as np
            rng = np.random.default_rng(7)
            scale, offset = rng.uniform(0.5, 3, 36), rng.uniform(-2, 5, 36)
            def draw(n):
                x = rng.normal(size=(n, 36)) * scale + offset
                return (x * rng.uniform(0.3, 2.5, (n, 1))).astype(np.float32)
            np.save("\(path("vectors.npy"))", draw(240))
            np.save("\(path("other.npy"))", draw(90))
            np.save("\(path("narrow.npy"))", rng.normal(size=(30, 10)).astype(np.float32))
            """)
    }

    /// numpy's side: the statistics of `kind` over the training rows, and the forward pass
    /// with what the run stored. argv: run, data, kind.
    static let reference = """
        import json, sys, numpy as np
        from safetensors.numpy import load_file
        R, data, kind = sys.argv[1], sys.argv[2], sys.argv[3]
        config = json.load(open(R + '/config.json'))
        x = np.load(data).astype(np.float64).reshape(len(np.load(data)), -1)
        D = x.shape[1]
        def rel(u, v): return float(np.abs(np.asarray(u, np.float64) - v).max() / max(np.abs(v).max(), 1e-30))
        # What the run stored.
        assert config['normalization']['kind'] == kind, config['normalization']
        mu, s = np.load(R + '/mean.npy').astype(np.float64), config['normalization']['scale']
        assert config['dataset']['std'] == s
        def normalize(v):
            if kind == 'unit-norm':
                f = np.sqrt(D) / np.linalg.norm(v, axis=1, keepdims=True)
                return v * f, 1 / f
            return (v - mu) / s, np.full((len(v), 1), s)
        V, b, W, a = [np.load(R + '/%s.npy' % n).astype(np.float64) for n in 'VbWa']
        def forward(v):
            xn, back = normalize(v)
            z = np.maximum(xn @ V + b, 0)
            return xn, z, (z @ W + a) * back + (0 if kind == 'unit-norm' else mu)
        """

    func python(_ script: String, _ args: [String]) throws {
        let r = try Harness.run("/usr/bin/env", ["python3", "-c", Self.reference + "\n" + script] + args, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("ok"), r.stdout + r.stderr)
    }

    /// For every kind: the stored statistics are numpy's over the training rows; `encode`'s
    /// codes and reconstructions are numpy's forward pass with them; the SAELens export, run
    /// by numpy on raw inputs, gives `encode`'s codes; the held-out terms are numpy's.
    func testEveryKindAgainstNumpy() throws {
        try makeData()
        let kinds = ["sheet", "none", "center", "unit-norm"]
        // The kinds' runs are independent: each step is launched for all four at once.
        let trains = try Harness.launchAll(1, kinds.map { kind in
            ["train", "--data", path("vectors.npy"), "--image-shape", "6x6", "--normalize", kind,
             "--lambda", "0.1", "--hidden", "30", "--batch-size", "48", "--iterations", "300",
             "--log-every", "100", "--eval-fraction", "0.2", "--quiet", "--out", path("run-\(kind)")]
        })
        for (kind, train) in zip(kinds, trains) { XCTAssertEqual(train.status, 0, "\(kind): \(train.stderr)") }
        let encodes = try Harness.launchAll(2, kinds.map { kind in
            ["encode", path("run-\(kind)"), "--data", path("other.npy"), "--out", path("codes-\(kind).npy"),
             "--reconstruct", path("rec-\(kind).npy"), "--quiet"]
        })
        for (kind, encode) in zip(kinds, encodes) { XCTAssertEqual(encode.status, 0, "\(kind): \(encode.stderr)") }
        let exports = try Harness.launchAll(1, kinds.map { ["export", path("run-\($0)"), "--format", "saelens", "--out", path("sae-\($0)")] })
        for (kind, export) in zip(kinds, exports) { XCTAssertEqual(export.status, 0, "\(kind): \(export.stderr)") }
        for kind in kinds {
            let run = path("run-\(kind)"), sae = path("sae-\(kind)")
            try python("""
                # The statistics, from the raw training rows.
                held = config['heldOutRows']
                train = x[[i for i in range(len(x)) if i not in set(held)]]
                assert len(held) == 48 and len(train) == 192
                if kind in ('sheet', 'center'):
                    m = train.mean(axis=0)
                    assert np.abs(mu - m).max() <= 1e-6 * np.abs(m).max(), np.abs(mu - m).max()
                else:
                    assert (mu == 0).all()
                expected = (train - train.mean(axis=0)).std() if kind == 'sheet' else 1.0
                assert abs(s - expected) <= 1e-12 * expected, (s, expected)

                # encode (2 ranks) on other data, with the stored statistics.
                other = np.load(sys.argv[4]).astype(np.float64)
                _, z, rec = forward(other)
                codes = np.load(sys.argv[5])
                assert codes.shape == z.shape and rel(codes, z) < 1e-5, rel(codes, z)
                assert rel(np.load(sys.argv[6]), rec) < 1e-5, rel(np.load(sys.argv[6]), rec)
                assert (z > 0).any()

                # The SAELens export on raw inputs, as SAELens's forward computes it.
                cfg = json.load(open(sys.argv[7] + '/cfg.json'))
                t = {k: v.astype(np.float64) for k, v in load_file(sys.argv[7] + '/sae_weights.safetensors').items()}
                assert cfg['normalize_activations'] == ('constant_norm_rescale' if kind == 'unit-norm' else 'none'), cfg
                assert cfg['apply_b_dec_to_input'] is False and cfg['d_in'] == D
                v = other
                if cfg['normalize_activations'] == 'constant_norm_rescale':
                    coeff = np.sqrt(cfg['d_in']) / np.linalg.norm(v, axis=1, keepdims=True)
                    v = v * coeff
                ze = np.maximum(v @ t['W_enc'] + t['b_enc'], 0)
                out = ze @ t['W_dec'] + t['b_dec']
                if cfg['normalize_activations'] == 'constant_norm_rescale':
                    out = out / coeff
                assert rel(ze, codes) < 1e-5, rel(ze, codes)
                assert rel(out, rec) < 1e-5, rel(out, rec)

                # The held-out terms of the last log line, from the final weights.
                xn, z, _ = forward(x[held])
                r = z @ W + a - xn
                line = [json.loads(l) for l in open(R + '/metrics.jsonl')][-1]
                assert line['iteration'] == 299
                assert abs(line['eval_rec'] - (r ** 2).sum(axis=1).mean()) <= 1e-4 * (r ** 2).sum(axis=1).mean()
                # Explained variance about the held-out rows' mean; where the data are not centred,
                # the fraction of the squared norm explained as well.
                assert abs(line['eval_explained_variance'] - (1 - (r ** 2).sum() / ((xn - xn.mean(axis=0)) ** 2).sum())) <= 1e-5
                if kind in ('none', 'unit-norm'):
                    assert abs(line['eval_explained_squared_norm'] - (1 - (r ** 2).sum() / (xn ** 2).sum())) <= 1e-5
                else:
                    assert 'eval_explained_squared_norm' not in line
                assert line['eval_l0'] == (z > 0).sum(axis=1).mean()
                assert line['eval_dead_units'] == int(((z > 0).sum(axis=0) == 0).sum())
                print('ok', kind, line['eval_rec'])
                """, [run, path("vectors.npy"), kind, path("other.npy"), path("codes-\(kind).npy"), path("rec-\(kind).npy"), sae])
        }
    }

    /// `sheet` is the default, as in every run before `--normalize`; PCA takes sheet and center.
    func testSheetIsTheDefaultAndPCAOnlyCentres() throws {
        for (name, flags) in [("default", []), ("sheet", ["--normalize", "sheet"])] {
            let r = try Harness.aetrain(["train", "--lambda", "1", "--iterations", "20", "--quiet", "--out", path(name)] + flags)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        for file in ["V.npy", "W.npy", "b.npy", "a.npy", "mean.npy"] {
            XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("default/\(file)")),
                           try Data(contentsOf: dir.appendingPathComponent("sheet/\(file)")), file)
        }
        let none = try Harness.aetrain(["pca", "--normalize", "none", "--out", path("pca")])
        XCTAssertEqual(none.status, 64)
        XCTAssertTrue(none.stderr.contains("pca centres the data: --normalize must be sheet or center, got none"), none.stderr)
        let center = try Harness.aetrain(["pca", "--normalize", "center", "--components", "4", "--quiet", "--out", path("pca")])
        XCTAssertEqual(center.status, 0, center.stderr)
    }

    /// `--eval-data`: eval_ terms at every log line, numpy's at the end, the same on 1 and 2
    /// ranks; bad combinations refused with one line.
    func testEvalData() throws {
        try makeData()
        var lines: [[[String: Any]]] = []
        // One rank and two, launched at once into their own runs.
        let trained = try Harness.runAll([1, 2].map { ranks in
            try Harness.mpirunCommand(ranks, ["train", "--data", path("vectors.npy"), "--image-shape", "6x6", "--normalize", "center",
                                              "--eval-data", path("other.npy"), "--lambda", "0.1", "--hidden", "30", "--batch-size", "48",
                                              "--iterations", "4", "--log-every", "1", "--out", path("eval\(ranks)")])
        })
        for (ranks, r) in zip([1, 2], trained) {
            let run = path("eval\(ranks)")
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("evaluated on 90 examples of \(path("other.npy"))"), r.stdout)
            let metrics = try Harness.metrics(URL(fileURLWithPath: run))
            XCTAssertEqual(metrics.count, 4)
            for line in metrics {
                for key in ["eval_rec", "eval_l0", "eval_dead_units", "eval_explained_variance"] { XCTAssertNotNil(line[key], key) }
            }
            lines.append(metrics)
            try python("""
                ev = np.load(sys.argv[4]).astype(np.float64)
                assert config['evalData'] == sys.argv[4] and config['evalDataset']['examples'] == 90
                assert 'heldOutRows' not in config
                m = x.mean(axis=0)   # every training row: nothing is held out
                assert np.abs(mu - m).max() <= 1e-6 * np.abs(m).max()
                xn, z, _ = forward(ev)
                r = z @ W + a - xn
                line = [json.loads(l) for l in open(R + '/metrics.jsonl')][-1]
                rec = (r ** 2).sum(axis=1).mean()
                assert abs(line['eval_rec'] - rec) <= 1e-4 * rec, (line['eval_rec'], rec)
                assert abs(line['eval_explained_variance'] - (1 - (r ** 2).sum() / ((xn - xn.mean(axis=0)) ** 2).sum())) <= 1e-4
                assert line['eval_l0'] == (z > 0).sum(axis=1).mean() and line['eval_dead_units'] == int(((z > 0).sum(axis=0) == 0).sum())
                print('ok', rec)
                """, [run, path("vectors.npy"), "center", path("other.npy")])
        }
        for (one, two) in zip(lines[0], lines[1]) {
            for key in ["eval_rec", "eval_l0", "eval_explained_variance"] {
                let a = one[key] as? Double ?? .nan, b = two[key] as? Double ?? .nan
                XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a)), "\(key) at iteration \(one["iteration"] ?? "?")")
            }
        }

        // Another D, both ways of evaluating, a model that does not evaluate: one line, nothing written.
        let bad: [([String], Int32, String)] = [
            (["--eval-data", path("narrow.npy"), "--batch-size", "48"], 1, "--eval-data \(path("narrow.npy")): examples have D = 10 values, but the training data has D = 36"),
            (["--eval-data", path("other.npy"), "--eval-fraction", "0.1", "--batch-size", "48"], 64, "--eval-data and --eval-fraction exclude each other"),
            (["--eval-data", path("other.npy"), "--model", "sparse-coding"], 1, "--eval-data does not apply to the sparse-coding model"),
        ]
        // Each is refused before it writes anything: launched at once.
        let out = path("bad")
        let refusals = try Harness.launchAll(2, bad.map { ["train", "--data", path("vectors.npy"), "--image-shape", "6x6", "--iterations", "2", "--out", out] + $0.0 })
        for ((flags, status, message), r) in zip(bad, refusals) {
            XCTAssertEqual(r.status, status, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(flags): \(r.stderr)")
            if status == 1 { XCTAssertEqual(r.errorLines.count, 1, r.stderr) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(flags)")
        }

        // Resume evaluates on the recorded data, and refuses other data.
        let run = path("eval1")
        let other = try Harness.aetrain(["train", "--resume", run, "--iterations", "6", "--eval-data", path("vectors.npy")])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("is not the evaluation data this run recorded"), other.stderr)
        let resumed = try Harness.aetrain(["train", "--resume", run, "--iterations", "6", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let metrics = try Harness.metrics(URL(fileURLWithPath: run))
        XCTAssertEqual(metrics.count, 6)
        XCTAssertNotNil(metrics.last?["eval_rec"])
    }

    /// `--resume` applies the statistics of the checkpoint (and continues exactly); `--init`
    /// applies the init run's and refuses another kind; a run directory from before
    /// `normalization` was recorded still encodes as the sheet's.
    func testResumeInitAndOlderRuns() throws {
        try makeData()
        let common = ["--data", path("vectors.npy"), "--image-shape", "6x6", "--normalize", "center", "--lambda", "0.1",
                      "--hidden", "30", "--batch-size", "48", "--quiet"]
        XCTAssertEqual(try Harness.aetrain(["train"] + common + ["--iterations", "60", "--out", path("straight")]).status, 0)
        XCTAssertEqual(try Harness.aetrain(["train"] + common + ["--iterations", "30", "--out", path("resumed")]).status, 0)
        let r = try Harness.mpirun(2, ["train", "--resume", path("resumed"), "--iterations", "60", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertLessThan(try Harness.relativeDifference(dir.appendingPathComponent("straight"), dir.appendingPathComponent("resumed")), 1e-4)
        // The checkpoint holds the kind and μ in double: numpy's mean of the data.
        try python("""
            import glob, struct
            f = sorted(glob.glob(R + '/checkpoints/*'))[-1]
            blob = open(f, 'rb').read()
            n = struct.unpack('<Q', blob[8:16])[0]
            header = json.loads(blob[16:16 + n])
            assert header['normalization'] == {'kind': 'center', 'scale': 1}, header['normalization']
            at = 16 + n
            for sec in header['sections']:
                size = sec['count'] * (8 if sec['kind'] == 'f64' else 4)
                if sec['name'] == 'normalization.mean':
                    stored = np.frombuffer(blob[at:at + size], '<f8')
                at += size
            assert np.abs(stored - x.mean(axis=0)).max() <= 1e-12 * np.abs(x).max()
            print('ok')
            """, [path("resumed"), path("vectors.npy"), "center"])

        // --init: the init run's statistics, applied to other data.
        let initialized = try Harness.aetrain(["train", "--init", path("straight"), "--data", path("other.npy"), "--image-shape", "6x6",
                                               "--batch-size", "45", "--iterations", "5", "--quiet", "--out", path("init")])
        XCTAssertEqual(initialized.status, 0, initialized.stderr)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("init/mean.npy")),
                       try Data(contentsOf: dir.appendingPathComponent("straight/mean.npy")))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("init/config.json"))) as? [String: Any]
        XCTAssertEqual((config?["normalization"] as? [String: Any])?["kind"] as? String, "center")
        let refused = try Harness.aetrain(["train", "--init", path("straight"), "--normalize", "sheet", "--data", path("other.npy"),
                                           "--image-shape", "6x6", "--batch-size", "45", "--out", path("init2")])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.errorLines, ["error: --init \(path("straight")): its weights were trained with --normalize center; they cannot start a run with --normalize sheet"])

        // A sheet run whose config.json predates `normalization` encodes as before.
        XCTAssertEqual(try Harness.aetrain(["train", "--iterations", "20", "--quiet", "--out", path("old")]).status, 0)
        XCTAssertEqual(try Harness.aetrain(["encode", path("old"), "--out", path("new-codes.npy"), "--quiet"]).status, 0)
        _ = try Harness.python("""
            import json
            c = json.load(open("\(path("old"))/config.json")); del c["normalization"]
            json.dump(c, open("\(path("old"))/config.json", "w"))
            """)
        XCTAssertEqual(try Harness.aetrain(["encode", path("old"), "--out", path("old-codes.npy"), "--quiet"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("old-codes.npy")),
                       try Data(contentsOf: dir.appendingPathComponent("new-codes.npy")))
    }
}
