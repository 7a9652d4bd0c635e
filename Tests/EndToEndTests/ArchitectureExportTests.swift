import AETrainCore
import Foundation
import XCTest

/// `encode` and `export --format saelens` for each architecture (relu, topk, batchtopk,
/// jumprelu), checked against a numpy implementation of SAELens's forward pass written from
/// sae_lens/saes/*.py, and against the inference rules' formulas on the run's own files;
/// `encode --held-out`; damaged architecture runs refused with one line.
///
/// The runs are fixtures: a short relu run with the architecture written into its config.json
/// and, for batchtopk and jumprelu, a threshold.npy beside its weights, as finished runs of
/// those architectures record them (`ArchitectureFixture`).
final class ArchitectureExportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("arch-export") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// numpy's SAELens: `saelens(sae_dir, x)` → (cfg, tensors, π, z, x̂) for raw inputs x, as
    /// SAE.load_from_disk(sae_dir).encode/decode compute them (process_sae_in: the dtype, the
    /// run-time normalization, b_dec subtracted if apply_b_dec_to_input; then the architecture's
    /// activation; decode, and the normalization undone), in float64. And the inference rules
    /// of the issue on a run's own files: `rule(run, x)` → (π, z, x̂).
    static let reference = """
        import json, os, sys, numpy as np
        from safetensors.numpy import load_file

        def saelens(sae, x):
            cfg = json.load(open(sae + '/cfg.json'))
            t = {k: v.astype(np.float64) for k, v in load_file(sae + '/sae_weights.safetensors').items()}
            assert cfg['reshape_activations'] == 'none'
            x = x.astype(np.float32).astype(np.float64)
            coeff = np.ones((x.shape[0], 1))
            if cfg['normalize_activations'] == 'constant_norm_rescale':
                coeff = np.sqrt(cfg['d_in']) / np.linalg.norm(x, axis=-1, keepdims=True)
            else:
                assert cfg['normalize_activations'] == 'none', cfg['normalize_activations']
            sae_in = x * coeff - t['b_dec'] * float(cfg['apply_b_dec_to_input'])
            pre = sae_in @ t['W_enc'] + t['b_enc']
            arch = cfg['architecture']
            if arch == 'standard':
                z = np.maximum(pre, 0)
            elif arch == 'topk':
                if cfg.get('rescale_acts_by_decoder_norm', False):
                    pre = pre * np.linalg.norm(t['W_dec'], axis=-1)
                idx = np.argsort(-pre, axis=-1, kind='stable')[:, :cfg['k']]
                z = np.zeros_like(pre)
                np.put_along_axis(z, idx, np.maximum(np.take_along_axis(pre, idx, -1), 0), -1)
            elif arch == 'jumprelu':
                z = np.maximum(pre, 0) * (pre > t['threshold'])
            else:
                raise ValueError(arch)
            return cfg, t, pre, z, (z @ t['W_dec'] + t['b_dec']) / coeff

        def rule(run, x):
            c = json.load(open(run + '/config.json'))
            a = (c['settings'].get('architecture') or {'activation': 'relu'})
            kind = (c.get('normalization') or {}).get('kind', 'sheet')
            V, b, W, av = [np.load(run + '/%s.npy' % n).astype(np.float64) for n in 'VbWa']
            mean = np.load(run + '/mean.npy').astype(np.float64)
            x = x.astype(np.float64)
            if kind == 'unit-norm':
                f = np.linalg.norm(x, axis=1, keepdims=True) / np.sqrt(x.shape[1]); xn = x / f
            else:
                f = c['normalization']['scale'] if c.get('normalization') else c['dataset']['std']; xn = (x - mean) / f
            pre = xn @ V + b
            act = a['activation']
            if act == 'relu':
                z = np.maximum(pre, 0)
            elif act == 'topk':
                r = np.maximum(pre, 0)
                idx = np.argsort(-r, axis=-1, kind='stable')[:, :a['k']]
                z = np.zeros_like(r); np.put_along_axis(z, idx, np.take_along_axis(r, idx, -1), -1)
            elif act == 'batchtopk':
                th = np.load(run + '/threshold.npy'); r = np.maximum(pre, 0); z = r * (r > th[0])
            else:
                th = np.load(run + '/threshold.npy').astype(np.float64); z = pre * (pre > th)
            rec = z @ W + av
            rec = rec * f if kind == 'unit-norm' else rec * f + mean
            return pre, z, rec

        def margin(pre, cfg_or_k, th=None):
            # How far each entry is from the rule's decision: an entry this close to it may
            # fall either way in float32 (ours) and float64 (numpy).
            if th is not None:
                return np.abs(pre - th)
            r = np.maximum(pre, 0); s = -np.sort(-r, axis=-1); k = cfg_or_k
            gap = s[:, k - 1] - s[:, k] if k < r.shape[1] else np.full(r.shape[0], np.inf)
            return np.repeat(gap[:, None], r.shape[1], 1)

        def same(codes, z, m, what, tol=1e-5):
            scale = max(np.abs(z).max(), 1e-30)
            bad = np.abs(np.asarray(codes, np.float64) - z) > tol * scale
            near = m < 1e-4 * scale
            assert not (bad & ~near).any(), (what, int((bad & ~near).sum()), float(np.abs(codes - z).max() / scale))
            assert bad.sum() <= max(2, z.size // 1000), (what, int(bad.sum()))

        def dense(path, rows, h):
            if path.endswith('.npy'): return np.load(path)
            t = load_file(path)
            if 'codes' in t: return t['codes']
            ip, ix, vv = t['indptr'], t['indices'], t['values']
            assert ip.dtype == np.int64 and ix.dtype == np.int32 and vv.dtype == np.float32 and ip.shape == (rows + 1,)
            out = np.zeros((rows, h), np.float32)
            for i in range(rows): out[i, ix[ip[i]:ip[i+1]]] = vv[ip[i]:ip[i+1]]
            return out
        """

    func python(_ script: String, _ args: [String]) throws {
        let r = try Harness.run("/usr/bin/env", ["python3", "-c", Self.reference + "\n" + script] + args, timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("ok"), r.stdout + r.stderr)
    }

    func testEachArchitectureExportGivesEncodesCodes() throws {
        let fixture = try ArchitectureFixture(in: dir)
        let base = try fixture.reluRun("relu", normalize: "sheet")
        let unit = try fixture.reluRun("relu-unit", normalize: "unit-norm")
        let runs: [(String, URL, ArchitectureSettings.Activation, Int, [Float]?)] = [
            ("relu", base, .relu, 32, nil),
            ("topk", base, .topk, 5, nil),
            ("batchtopk", base, .batchtopk, 5, [Float](repeating: 0.05, count: 32)),
            ("jumprelu", base, .jumprelu, 32, (0..<32).map { Float($0) * 0.004 }),
            ("topk-unit", unit, .topk, 3, nil),
            ("jumprelu-unit", unit, .jumprelu, 32, (0..<32).map { Float($0 % 4) * 0.02 }),
        ]
        var commands: [Harness.Command] = []
        for (name, from, activation, k, thresholds) in runs {
            let run = name == "relu" ? from : try fixture.architectureRun(name, from: from, activation, k: k, thresholds: thresholds)
            commands += [
                Harness.Command(Harness.aetrain, ["encode", run.path, "--data", fixture.data, "--quiet",
                                                  "--out", path("\(name).codes.npy"), "--reconstruct", path("\(name).rec.npy")]),
                try Harness.mpirunCommand(2, ["encode", run.path, "--data", fixture.data, "--quiet", "--sparse", "--out", path("\(name).csr.safetensors")]),
                try Harness.mpirunCommand(2, ["export", run.path, "--format", "saelens", "--quiet", "--out", path("sae-\(name)"),
                                              "--model-name", "all-MiniLM-L6-v2", "--hook-name", "sentence_embedding"]),
            ]
        }
        for (command, r) in zip(commands, try Harness.runAll(commands)) {
            XCTAssertEqual(r.status, 0, "\(command.arguments): \(r.stderr)")
        }
        try python("""
            D, data = sys.argv[1], sys.argv[2]
            x = np.load(data)
            expect = {'relu': ('standard', None), 'topk': ('topk', 5), 'batchtopk': ('jumprelu', None), 'jumprelu': ('jumprelu', None),
                      'topk-unit': ('topk', 3), 'jumprelu-unit': ('jumprelu', None)}
            for name, (arch, k) in expect.items():
                run = D + '/' + ('relu' if name == 'relu' else name)
                cfg, t, pre, z, rec = saelens(D + '/sae-' + name, x)
                rpre, rz, rrec = rule(run, x)
                assert cfg['architecture'] == arch and cfg.get('k') == k, (name, cfg['architecture'], cfg.get('k'))
                if arch == 'topk': assert cfg['rescale_acts_by_decoder_norm'] is False
                assert cfg['apply_b_dec_to_input'] is False and cfg['dtype'] == 'float32'
                assert cfg['normalize_activations'] == ('constant_norm_rescale' if name.endswith('-unit') else 'none'), name
                names = {'W_enc', 'b_enc', 'W_dec', 'b_dec'} | ({'threshold'} if arch == 'jumprelu' else set())
                assert set(t) == names, (name, sorted(t))
                raw = load_file(D + '/sae-' + name + '/sae_weights.safetensors')
                assert all(v.dtype == np.float32 for v in raw.values())
                if arch == 'jumprelu':
                    th = np.load(run + '/threshold.npy')
                    assert raw['threshold'].shape == th.shape and np.array_equal(raw['threshold'], th), name
                md = cfg['metadata']
                assert md['model_name'] == 'all-MiniLM-L6-v2' and md['hook_name'] == 'sentence_embedding', md
                assert int(md['sae_lens_version'].split('.')[0]) >= 6, md
                assert md['aetrain_architecture'] == name.split('-')[0], md
                # No absolute path anywhere in the export: not in cfg.json, not in the weights' header.
                for f in os.listdir(D + '/sae-' + name):
                    blob = open(D + '/sae-' + name + '/' + f, 'rb').read()
                    assert D.encode() not in blob and os.path.dirname(data).encode() not in blob, (name, f)
                def strings(o):
                    if isinstance(o, dict): return [s for v in o.values() for s in strings(v)]
                    return [o] if isinstance(o, str) else []
                assert not [s for s in strings(cfg) if s.startswith('/')], (name, strings(cfg))
                # SAELens's codes from the export = the rule's on the run's files = encode's.
                th = None if arch == 'topk' or arch == 'standard' else t['threshold']
                m = margin(pre, cfg.get('k'), th) if arch != 'standard' else np.full(pre.shape, np.inf)
                same(rz, z, m, name + ': the rule vs SAELens')
                same(np.load(D + '/' + name + '.codes.npy'), z, m, name + ': encode vs SAELens')
                same(dense(D + '/' + name + '.csr.safetensors', x.shape[0], z.shape[1]), z, m, name + ': encode --sparse on 2 ranks')
                if arch != 'standard': assert (z == 0).mean() > (np.maximum(pre, 0) == 0).mean(), name + ': the rule removed nothing'
                if arch == 'topk': assert ((z > 0).sum(1) <= k).all() and ((z > 0).sum(1) == k).mean() > 0.5, name
                # Reconstructions: encode --reconstruct and SAELens's decode agree (rows near a
                # decision excepted).
                rows = (m.min(axis=1) > 1e-4 * np.abs(z).max())
                er = np.load(D + '/' + name + '.rec.npy').astype(np.float64)
                assert np.abs(er[rows] - rec[rows]).max() <= 1e-4 * np.abs(rec).max(), (name, np.abs(er[rows] - rec[rows]).max())
            print('ok')
            """, [dir.path, fixture.data])
    }

    func testHeldOutEncodesExactlyTheRunsHeldOutRows() throws {
        let fixture = try ArchitectureFixture(in: dir)
        let run = try fixture.architectureRun("topk", from: try fixture.reluRun("relu", normalize: "sheet"), .topk, k: 4, thresholds: nil)
        let none = dir.appendingPathComponent("no-eval")
        let t = try Harness.aetrain(["train", "--quiet", "--data", fixture.data, "--out", none.path, "--iterations", "5", "--hidden", "8"])
        XCTAssertEqual(t.status, 0, t.stderr)
        // Elsewhere: the run's data is found from its config.json, whatever the working directory.
        let commands: [Harness.Command] = [
            Harness.Command(Harness.aetrain, ["encode", run.path, "--held-out", "--quiet", "--out", path("h1.npy"), "--reconstruct", path("r1.npy")],
                            directory: URL(fileURLWithPath: "/")),
            try Harness.mpirunCommand(2, ["encode", run.path, "--held-out", "--quiet", "--out", path("h2.npy")]),
            try Harness.mpirunCommand(3, ["encode", run.path, "--held-out", "--quiet", "--sparse", "--out", path("h3.safetensors")]),
            Harness.Command(Harness.aetrain, ["encode", run.path, "--held-out", "--data", fixture.data, "--quiet", "--out", path("h4.npy")]),
        ]
        for (command, r) in zip(commands, try Harness.runAll(commands)) {
            XCTAssertEqual(r.status, 0, "\(command.arguments): \(r.stderr)")
        }
        try python("""
            D, run, data = sys.argv[1], sys.argv[2], sys.argv[3]
            x = np.load(data); rows = json.load(open(run + '/config.json'))['heldOutRows']
            assert 0 < len(rows) < x.shape[0] and rows == sorted(rows)
            pre, z, rec = rule(run, x[rows])
            m = margin(pre, 4)
            for f in ['h1.npy', 'h2.npy', 'h3.safetensors', 'h4.npy']:
                c = dense(D + '/' + f, len(rows), z.shape[1])
                assert c.shape == z.shape, (f, c.shape)
                same(c, z, m, f)
            assert np.abs(np.load(D + '/r1.npy') - rec).max() <= 1e-4 * np.abs(rec).max()
            print('ok')
            """, [dir.path, run.path, fixture.data])

        // A run that held out nothing, and data that is not the run's, are refused with one line.
        try Harness.python("import numpy as np; np.save('\(path("other.npy"))', np.load('\(fixture.data)') * 1.5)")
        let cases: [([String], String)] = [
            (["encode", none.path, "--held-out", "--out", path("x.npy")], "holds out no examples (it was trained without --eval-fraction)"),
            (["encode", run.path, "--held-out", "--data", path("other.npy"), "--out", path("x.npy")], "is not the data"),
        ]
        for ((args, expected), r) in zip(cases, try Harness.launchAll(2, cases.map(\.0))) {
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.errorLines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.errorLines.first?.contains(expected) ?? false, "\(args): \(r.errorLines)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.npy")))
    }

    /// A threshold.npy of the wrong shape or dtype, not finite, missing, or (batchtopk) not one
    /// value; k out of range; a jumprelu run with negative thresholds (SAELens would give other
    /// codes): one line each, nothing written.
    func testDamagedArchitectureRunsAreRefusedWithOneLine() throws {
        let fixture = try ArchitectureFixture(in: dir)
        let base = try fixture.reluRun("relu", normalize: "sheet")
        func run(_ name: String, _ activation: ArchitectureSettings.Activation, k: Int = 8, _ thresholds: [Float]?) throws -> String {
            try fixture.architectureRun(name, from: base, activation, k: k, thresholds: thresholds).path
        }
        let shape = try run("shape", .jumprelu, [Float](repeating: 0.1, count: 31))
        let float64 = try run("float64", .jumprelu, nil)
        try Harness.python("import numpy as np; np.save('\(float64)/threshold.npy', np.full(32, 0.1))")
        let missing = try run("missing", .batchtopk, nil)
        let differing = try run("differing", .batchtopk, (0..<32).map { $0 == 7 ? 0.2 : 0.1 })
        let nan = try run("nan", .jumprelu, (0..<32).map { $0 == 3 ? .nan : 0.1 })
        let zeroK = try run("k0", .topk, k: 0, nil), bigK = try run("k33", .topk, k: 33, nil)
        let negative = try run("negative", .jumprelu, (0..<32).map { $0 == 5 ? -0.5 : 0.1 })
        let cases: [([String], String)] = [
            (["encode", shape, "--data", fixture.data, "--out", path("x.npy")], "expected float32 of shape (32,) (one threshold per unit), got float32 of shape (31,)"),
            (["export", float64, "--format", "saelens", "--out", path("sae")], "got float64 of shape (32,)"),
            (["encode", missing, "--data", fixture.data, "--out", path("x.npy")], "config.json names a batchtopk model but threshold.npy is missing"),
            (["export", differing, "--format", "saelens", "--out", path("sae")], "one threshold, repeated for every unit; element 7 differs"),
            (["encode", nan, "--data", fixture.data, "--out", path("x.npy")], "threshold.npy: element 3 is not finite"),
            (["encode", zeroK, "--data", fixture.data, "--out", path("x.npy")], "topk with k = 0, but the model has h = 32 units"),
            (["export", bigK, "--format", "saelens", "--out", path("sae")], "topk with k = 33"),
            (["export", negative, "--format", "saelens", "--out", path("sae")], "1 of 32 jumprelu thresholds are negative"),
        ]
        for ((args, expected), r) in zip(cases, try Harness.launchAll(2, cases.map(\.0))) {
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.errorLines.first?.contains(expected) ?? false, "\(args): \(r.errorLines)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.npy")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("sae")))
        // The negative thresholds are encode's own to apply: π·H(π − θ) keeps negative codes.
        let r = try Harness.aetrain(["encode", negative, "--data", fixture.data, "--quiet", "--out", path("neg.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        try python("""
            pre, z, _ = rule(sys.argv[1], np.load(sys.argv[2]))
            same(np.load(sys.argv[3]), z, margin(pre, None, np.load(sys.argv[1] + '/threshold.npy')), 'negative')
            print('ok')
            """, [negative, fixture.data, path("neg.npy")])
    }
}

/// Each architecture's export loaded by SAELens itself (`SAE.load_from_disk`), its codes
/// compared with `encode`'s by deploy/saelens-check.py, and its metadata as SAELens reads it.
/// SAELens needs PyTorch: the test installs `sae-lens` with pip into a venv,
/// ~/.cache/aetrain/saelens-venv, when it is not there (the first time: some GB, many minutes).
final class SAELensLoadTests: XCTestCase {
    static let venv = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/aetrain/saelens-venv")

    func saeLensPython() throws -> String {
        let python = Self.venv.appendingPathComponent("bin/python").path
        // On a new machine there is no venv yet, so its python cannot even be started.
        let present = FileManager.default.isExecutableFile(atPath: python)
        if try !present || Harness.run(python, ["-c", "import sae_lens"], timeout: 300).status != 0 {
            let made = try Harness.run("/usr/bin/env", ["python3", "-m", "venv", Self.venv.path], timeout: 300)
            XCTAssertEqual(made.status, 0, made.stderr)
            let pip = try Harness.run(python, ["-m", "pip", "install", "-q", "sae-lens"], timeout: 7200)
            XCTAssertEqual(pip.status, 0, "pip install sae-lens: \(pip.stderr)")
        }
        return python
    }

    func testSAELensLoadsEachArchitecturesExportWithEncodesCodes() throws {
        let python = try saeLensPython()
        let dir = try Harness.temporaryDirectory("saelens")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try ArchitectureFixture(in: dir)
        let base = try fixture.reluRun("relu", normalize: "sheet"), unit = try fixture.reluRun("unit", normalize: "unit-norm")
        let runs: [(String, URL)] = [
            ("relu", base),
            ("topk", try fixture.architectureRun("topk", from: base, .topk, k: 5, thresholds: nil)),
            ("batchtopk", try fixture.architectureRun("batchtopk", from: base, .batchtopk, k: 5, thresholds: [Float](repeating: 0.05, count: 32))),
            ("jumprelu", try fixture.architectureRun("jumprelu", from: unit, .jumprelu, k: 32, thresholds: (0..<32).map { Float($0) * 0.01 })),
        ]
        var triples: [String] = []
        for (name, run) in runs {
            let codes = dir.appendingPathComponent("\(name).npy").path, sae = dir.appendingPathComponent("sae-\(name)").path
            XCTAssertEqual(try Harness.aetrain(["encode", run.path, "--data", fixture.data, "--quiet", "--out", codes]).status, 0)
            let e = try Harness.aetrain(["export", run.path, "--format", "saelens", "--quiet", "--out", sae,
                                         "--model-name", "all-MiniLM-L6-v2", "--hook-name", "sentence_embedding"])
            XCTAssertEqual(e.status, 0, e.stderr)
            triples += [sae, fixture.data, codes]
        }
        // One process: PyTorch takes long to import.
        let check = try Harness.run(python, [DeployScriptsTests.repository.appendingPathComponent("deploy/saelens-check.py").path] + triples,
                                    timeout: 1200)
        XCTAssertEqual(check.status, 0, "\(check.stdout) \(check.stderr)")
        let lines = check.stdout.split(separator: "\n").map(String.init).filter { $0.contains(": SAELens ") }
        XCTAssertEqual(lines.count, 4, check.stdout)
        for ((name, _), line) in zip(runs, lines) {
            let architecture = name == "relu" ? "StandardSAE (standard)" : name == "topk" ? "TopKSAE (topk)" : "JumpReLUSAE (jumprelu)"
            XCTAssertTrue(line.contains("sae-\(name): SAELens \(architecture)"), line)
            XCTAssertTrue(line.contains("model_name all-MiniLM-L6-v2, hook_name sentence_embedding, dataset_path vectors.npy"), line)
        }
    }
}

/// Finished runs of each architecture for the tests, made from a short relu run: its files
/// copied, `settings.architecture` written into config.json (as `TrainSettings` encodes it) and,
/// for batchtopk and jumprelu, threshold.npy (float32, (h)) beside the weights.
struct ArchitectureFixture {
    let dir: URL
    /// 300 vectors of D = 24: sparse nonnegative combinations of 12 directions, noise and an offset.
    let data: String

    init(in dir: URL) throws {
        self.dir = dir
        data = dir.appendingPathComponent("vectors.npy").path
        let r = try Harness.python("""
            import numpy as np
            g = np.random.default_rng(1); B = g.normal(size=(12, 24)); c = np.maximum(g.normal(size=(300, 12)) - 0.5, 0)
            np.save('\(data)', (c @ B + 0.1 * g.normal(size=(300, 24)) + 0.3).astype('f4'))
            """)
        guard r.status == 0 else { throw UserError("making the vectors: \(r.stderr)") }
    }

    /// A relu run, h = 32, 200 iterations, 20% held out.
    func reluRun(_ name: String, normalize: String) throws -> URL {
        let out = dir.appendingPathComponent(name)
        let r = try Harness.aetrain(["train", "--quiet", "--data", data, "--out", out.path, "--iterations", "200", "--hidden", "32",
                                     "--batch-size", "50", "--lambda", "0.5", "--eval-fraction", "0.2", "--seed", "2", "--normalize", normalize])
        guard r.status == 0 else { throw UserError("training \(name): \(r.stderr)") }
        return out
    }

    /// `from`'s files as a finished `activation` run with k and thresholds.
    func architectureRun(_ name: String, from: URL, _ activation: ArchitectureSettings.Activation, k: Int,
                         thresholds: [Float]?) throws -> URL {
        let out = dir.appendingPathComponent(name)
        try FileManager.default.copyItem(at: from, to: out)
        let configURL = out.appendingPathComponent("config.json")
        guard var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any],
              var settings = config["settings"] as? [String: Any] else { throw UserError("\(configURL.path): not a run's config") }
        var architecture = ArchitectureSettings(activation: activation)
        architecture.k = k
        settings["architecture"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(architecture))
        config["settings"] = settings
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        if let thresholds { try NPYWriter.write(thresholds, shape: [thresholds.count], to: out.appendingPathComponent("threshold.npy")) }
        return out
    }
}
