import AETrainCore
import Foundation
import XCTest

/// `aetrain encode` and `aetrain export --format saelens` against numpy's forward pass on the
/// files of the sheet's sparse run (`SheetRuns`, shared with the other tests that only read it).
final class EncodeExportTests: XCTestCase {
    /// This test's outputs, beside (not inside) the shared run.
    var outputs: URL!
    override func setUpWithError() throws { outputs = try Harness.temporaryDirectory("encode") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: outputs) }

    func workspace() throws -> (dir: URL, run: String) {
        (outputs, try SheetRuns.runs().sparse.path)
    }

    /// numpy's codes and reconstruction of the raw faces with the run's files, compared with ours.
    static let reference = """
        import json, sys, numpy as np
        from safetensors.numpy import load_file
        R, faces = sys.argv[1], sys.argv[2]
        x = np.load(faces).reshape(100, -1).astype(np.float64)
        mean = np.load(R + '/mean.npy').astype(np.float64); std = json.load(open(R + '/config.json'))['dataset']['std']
        V, b, W, a = [np.load(R + '/%s.npy' % n).astype(np.float64) for n in 'VbWa']
        z = np.maximum(((x - mean) / std) @ V + b, 0)
        rec = (z @ W + a) * std + mean
        def rel(u, v): return float(np.abs(np.asarray(u, np.float64) - v).max() / max(np.abs(v).max(), 1e-30))
        def dense(path):
            if path.endswith('.npy'): return np.load(path)
            t = load_file(path)
            if 'codes' in t: return t['codes']
            ip, ix, vv = t['indptr'], t['indices'], t['values']
            assert ip.dtype == np.int64 and ix.dtype == np.int32 and vv.dtype == np.float32 and ip.shape == (101,)
            try:
                import scipy.sparse
                return scipy.sparse.csr_matrix((vv, ix, ip), shape=(100, z.shape[1])).toarray()
            except ImportError:
                out = np.zeros((100, z.shape[1]), np.float32)
                for i in range(100): out[i, ix[ip[i]:ip[i+1]]] = vv[ip[i]:ip[i+1]]
                return out
        """

    func check(_ script: String, _ args: [String]) throws {
        let r = try Harness.run("/usr/bin/env", ["python3", "-c", Self.reference + "\n" + script] + args, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("ok"), r.stdout + r.stderr)
    }

    func testCodesEqualNumpyOnOneAndTwoRanks() throws {
        let (dir, run) = try workspace()
        let out = dir.appendingPathComponent("out-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        func p(_ name: String) -> String { out.appendingPathComponent(name).path }
        let jobs: [(Bool, [String])] = [
            (false, ["encode", run, "--data", "embedded", "--out", p("c1.npy"), "--reconstruct", p("r1.npy")]),
            (false, ["encode", run, "--data", Harness.embeddedFaces, "--out", p("c2.npy")]),
            (true, ["encode", run, "--out", p("c3.npy"), "--reconstruct", p("r3.npy")]),
            (true, ["encode", run, "--out", p("c4.safetensors"), "--format", "safetensors"]),
            (true, ["encode", run, "--out", p("c5.safetensors"), "--sparse"]),
        ]
        // Independent jobs with their own outputs, launched at once.
        let runs = try Harness.runAll(jobs.map { mpi, args in mpi ? try Harness.mpirunCommand(2, args) : Harness.Command(Harness.aetrain, args) })
        for ((_, args), r) in zip(jobs, runs) {
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        try check("""
            for f in ['c1.npy', 'c2.npy', 'c3.npy', 'c4.safetensors', 'c5.safetensors']:
                c = dense(sys.argv[3] + '/' + f)
                assert c.shape == z.shape and rel(c, z) < 1e-5, (f, rel(c, z))
            act = np.load(R + '/activations.npy')
            assert rel(np.load(sys.argv[3] + '/c1.npy')[:25], act) < 1e-5
            for f in ['r1.npy', 'r3.npy']:
                assert rel(np.load(sys.argv[3] + '/' + f), rec) < 1e-5, f
            print('ok')
            """, [run, Harness.embeddedFaces, out.path])
    }

    func testSAELensExportTakesRawInputs() throws {
        let (dir, run) = try workspace()
        let sae = dir.appendingPathComponent("sae-\(UUID().uuidString.prefix(6))").path
        let codes = dir.appendingPathComponent("codes-\(UUID().uuidString.prefix(6)).npy").path
        let r = try Harness.mpirun(2, ["export", run, "--format", "saelens", "--out", sae])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.aetrain(["encode", run, "--out", codes]).status, 0)
        try check("""
            t = load_file(sys.argv[3] + '/sae_weights.safetensors')
            assert {k: v.shape for k, v in t.items()} == {'W_enc': (625, 400), 'b_enc': (400,), 'W_dec': (400, 625), 'b_dec': (625,)}
            assert all(v.dtype == np.float32 for v in t.values())
            ze = np.maximum(x @ t['W_enc'].astype(np.float64) + t['b_enc'], 0)
            assert rel(ze, np.load(sys.argv[4])) < 1e-5, rel(ze, np.load(sys.argv[4]))
            assert rel(ze @ t['W_dec'].astype(np.float64) + t['b_dec'], rec) < 1e-5
            cfg = json.load(open(sys.argv[3] + '/cfg.json'))
            assert cfg['architecture'] == 'standard' and cfg['d_in'] == 625 and cfg['d_sae'] == 400
            assert cfg['dtype'] == 'float32' and cfg['device'] == 'cpu' and cfg['apply_b_dec_to_input'] is False
            assert cfg['normalize_activations'] == 'none' and cfg['reshape_activations'] == 'none'
            assert isinstance(cfg['metadata'], dict)
            print('ok')
            """, [run, Harness.embeddedFaces, sae, codes])
    }

    func testBadInputsGiveOneLineAndWriteNothing() throws {
        let (dir, run) = try workspace()
        let bad = dir.appendingPathComponent("bad-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        func p(_ name: String) -> String { bad.appendingPathComponent(name).path }
        _ = try Harness.python("import numpy as np; np.save('\(p("d10.npy"))', np.ones((20, 10), 'f4') * np.arange(10, dtype='f4'))")
        let pca = try Harness.aetrain(["pca", "--components", "4", "--quiet", "--out", p("pca")])
        XCTAssertEqual(pca.status, 0, pca.stderr)
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: bad.path))
        let runFiles = Set(try FileManager.default.contentsOfDirectory(atPath: run))
        let cases: [([String], String)] = [
            (["encode", run, "--data", p("d10.npy"), "--out", p("c.npy")], "D = 10"),
            (["encode", bad.path, "--out", p("c.npy")], "not a run directory"),
            (["encode", p("missing"), "--out", p("c.npy")], "no such run directory"),
            (["encode", p("pca"), "--out", p("c.npy")], "pca run"),
            (["encode", run, "--data", p("nofile.npy"), "--out", p("c.npy")], "no such file"),
            (["encode", run, "--out", run + "/V.npy"], "is the input"),
            (["encode", run, "--data", p("d10.npy"), "--out", p("d10.npy")], "is the input"),
            (["encode", run, "--out", p("c.npy"), "--sparse", "--format", "npy"], "--sparse"),
            (["export", p("pca"), "--format", "saelens", "--out", p("sae")], "pca run"),
            (["export", bad.path, "--format", "saelens", "--out", p("sae")], "not a run directory"),
            (["export", run, "--format", "saelens", "--out", run], "input"),
        ]
        // Independent refusals, launched at once (each refused before it writes anything).
        for ((args, expected), r) in zip(cases, try Harness.launchAll(2, cases.map(\.0))) {
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.errorLines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.errorLines.first?.contains(expected) ?? false, "\(args): \(r.errorLines)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: bad.path)), before)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: run)), runFiles)
    }

    /// Every file under `url` (recursively, hidden ones too) with its bytes; a directory as empty bytes.
    func snapshot(_ url: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: url.path) {
            var isDir: ObjCBool = false
            let path = url.appendingPathComponent(name).path
            FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            files[name] = isDir.boolValue ? Data() : try Data(contentsOf: URL(fileURLWithPath: path))
        }
        return files
    }

    /// An output name that contradicts the format, an existing codes file, and an export into a
    /// directory holding anything else, or a previous export, are refused with one line before
    /// anything is written; --overwrite replaces an existing file or a previous export.
    /// A run that is being trained holds its directory's lock: encode and export refuse it
    /// with one line (its weights are still the previous session's), and read it once it stopped.
    func testARunBeingTrainedIsRefusedUntilItStops() throws {
        let (dir, _) = try workspace()
        let run = dir.appendingPathComponent("training-\(UUID().uuidString.prefix(6))")
        let out = dir.appendingPathComponent("while-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // A finished session first, then one still training over it.
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--iterations", "20", "--hidden", "16", "--out", run.path]).status, 0)
        let job = try Harness.start(Harness.aetrain, ["train", "--quiet", "--resume", run.path, "--iterations", "100000000",
                                                      "--log-every", "10", "--checkpoint-every", "100000"])
        defer { if job.process.isRunning { job.process.terminate() } }
        try job.waitFor(file: run.appendingPathComponent("metrics.jsonl"), nonEmpty: true, timeout: 60)
        usleep(300_000)  // the resumed session under way
        let refusals = try Harness.runAll([
            Harness.Command(Harness.aetrain, ["encode", run.path, "--out", out.appendingPathComponent("codes.npy").path]),
            Harness.Command(Harness.aetrain, ["export", run.path, "--format", "saelens", "--out", out.appendingPathComponent("sae").path]),
        ])
        for r in refusals {
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.errorLines, ["error: \(run.path) is being trained (pid \(job.pid)): its files are still the previous session's; "
                                          + (r.stderr.contains("encode it") ? "encode" : "export") + " it once the run has ended or stopped"], r.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), [], "a refused reader wrote something")
        kill(job.pid, SIGTERM)
        XCTAssertEqual(job.wait(timeout: 60).status, 0)
        let after = try Harness.aetrain(["encode", run.path, "--out", out.appendingPathComponent("codes.npy").path])
        XCTAssertEqual(after.status, 0, after.stderr)
    }

    /// A full disk at any moment of `export --overwrite` leaves the previous export whole or the
    /// new one whole, never new weights beside an old cfg.json, and nothing staged behind: the
    /// dense run's export is replaced by the sparse run's on a small tmpfs, at sizes around the
    /// point where both fit (each export is about 490 pages of 4 KiB).
    func testAFullDiskLeavesTheOldExportOrTheNewOneWhole() throws {
        XCTAssertEqual(getuid(), 0, "mounting a small tmpfs needs root")
        let runs = try SheetRuns.runs()
        let scratch = outputs.appendingPathComponent("full-\(UUID().uuidString.prefix(6))")
        let references = try Harness.runAll(["dense", "sparse"].map {
            Harness.Command(Harness.aetrain, ["export", runs.root.appendingPathComponent($0).path, "--format", "saelens", "--quiet",
                                              "--out", scratch.appendingPathComponent($0).path])
        })
        XCTAssertEqual(references.map(\.status), [0, 0], references.map(\.stderr).joined())
        func contents(_ dir: URL) -> [String: Data] {
            var files: [String: Data] = [:]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                files[name] = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path)
            }
            return files
        }
        let old = contents(scratch.appendingPathComponent("dense")), new = contents(scratch.appendingPathComponent("sparse"))
        XCTAssertEqual(old.count, 2)
        XCTAssertNotEqual(old, new)
        let pages = (old.values.map(\.count) + new.values.map(\.count)).map { ($0 + 4095) / 4096 }.reduce(0, +)
        let mount = scratch.appendingPathComponent("mnt")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        var outcomes: [Int32] = []
        for size in stride(from: pages - 4, through: pages + 1, by: 1) {
            let m = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size * 4)k", "tmpfs", mount.path])
            XCTAssertEqual(m.status, 0, m.stderr)
            defer { _ = try? Harness.run("/bin/umount", [mount.path]) }
            let sae = mount.appendingPathComponent("sae")
            let first = try Harness.aetrain(["export", runs.dense.path, "--format", "saelens", "--quiet", "--out", sae.path])
            XCTAssertEqual(first.status, 0, "the old export fits in \(size) pages: \(first.stderr)")
            let second = try Harness.aetrain(["export", runs.sparse.path, "--format", "saelens", "--quiet", "--overwrite", "--out", sae.path])
            outcomes.append(second.status)
            if second.status != 0 { XCTAssertEqual(second.errorLines.count, 1, second.stderr) }
            let now = contents(sae)
            XCTAssertTrue(now == (second.status == 0 ? new : old), "\(size) pages, status \(second.status): \(now.keys.sorted())")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mount.path), ["sae"], "\(size) pages: left behind")
        }
        XCTAssertTrue(outcomes.contains(0) && outcomes.contains { $0 != 0 }, "the sizes span failure and success: \(outcomes)")
    }

    func testOutputsThatWouldBeWrongOrReplacedAreRefused() throws {
        let (dir, run) = try workspace()
        let out = dir.appendingPathComponent("refuse-\(UUID().uuidString.prefix(6))")
        func p(_ name: String) -> String { out.appendingPathComponent(name).path }
        for sub in ["sae-old", "sae-other", "sae-stray", "sae-empty"] {
            try FileManager.default.createDirectory(atPath: p(sub), withIntermediateDirectories: true)
        }
        let old = Data("2,000 rows of old codes".utf8)
        for (name, text) in [("old.npy", old), ("sae-old/cfg.json", Data("{\"d_sae\": 8}".utf8)),
                             ("sae-old/sae_weights.safetensors", Data("old weights".utf8)),
                             ("sae-other/cfg.json", Data("{}".utf8)), ("sae-other/sae_weights.safetensors", Data("w".utf8)),
                             ("sae-other/notes.txt", Data("mine".utf8)), ("sae-stray/.notes", Data("mine".utf8)),
                             ("sae-empty/.cfg.json.tmp-4242", Data("a killed export's".utf8))] {
            try text.write(to: URL(fileURLWithPath: p(name)))
        }
        let before = try snapshot(out)
        let runFiles = try snapshot(URL(fileURLWithPath: run))
        let usage: Int32 = 64, runtime: Int32 = 1
        let cases: [([String], Int32, String)] = [
            (["encode", run, "--out", p("s.npy"), "--sparse"], usage, "--sparse writes safetensors"),
            (["encode", run, "--out", p("c.npy"), "--format", "safetensors"], usage, "--out \(p("c.npy")) is named .npy"),
            (["encode", run, "--out", p("c.safetensors"), "--format", "npy"], usage, "is named .safetensors but --format is npy"),
            (["encode", run, "--out", p("c.npy"), "--reconstruct", p("r.safetensors")], usage, "--reconstruct"),
            (["encode", run, "--out", p("s.safetensors"), "--sparse", "--reconstruct", p("r.npy")], usage, "--reconstruct"),
            (["encode", run, "--out", p("old.npy")], runtime, "--out \(p("old.npy")) exists; replace it with --overwrite"),
            (["encode", run, "--out", p("new.npy"), "--reconstruct", p("old.npy")], runtime, "--reconstruct \(p("old.npy")) exists"),
            (["export", run, "--format", "saelens", "--out", p("sae-old")], runtime, "holds a SAELens export"),
            (["export", run, "--format", "saelens", "--out", p("sae-other"), "--overwrite"], runtime, "not a SAELens export (notes.txt)"),
            (["export", run, "--format", "saelens", "--out", p("sae-stray")], runtime, "not a SAELens export (.notes)"),
        ]
        for ((args, status, expected), r) in zip(cases, try Harness.launchAll(2, cases.map(\.0))) {
            XCTAssertEqual(r.status, status, "\(args): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.errorLines.first?.contains(expected) ?? false, "\(args): \(r.errorLines)")
        }
        XCTAssertEqual(try snapshot(out), before, "a refused command changed nothing")
        XCTAssertEqual(try snapshot(URL(fileURLWithPath: run)), runFiles)

        // What still works: --overwrite, names with neither extension, the format from a
        // .safetensors name, a directory holding only a killed export's temporary file.
        let accepted: [[String]] = [
            ["encode", run, "--out", p("inferred.safetensors")],
            ["encode", run, "--out", p("old.npy"), "--overwrite"],
            ["encode", run, "--out", p("codes"), "--sparse"],
            ["encode", run, "--out", p("codes.bin"), "--reconstruct", p("rec.bin")],
            ["export", run, "--format", "saelens", "--out", p("sae-old"), "--overwrite"],
            ["export", run, "--format", "saelens", "--out", p("sae-empty")],
        ]
        for (args, r) in zip(accepted, try Harness.launchAll(1, accepted)) {
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        try check("""
            assert rel(np.load(sys.argv[3] + '/old.npy'), z) < 1e-5 and rel(np.load(sys.argv[3] + '/codes.bin'), z) < 1e-5
            assert rel(np.load(sys.argv[3] + '/rec.bin'), rec) < 1e-5 and rel(dense(sys.argv[3] + '/codes'), z) < 1e-5
            assert rel(load_file(sys.argv[3] + '/inferred.safetensors')['codes'], z) < 1e-5
            import os
            assert sorted(os.listdir(sys.argv[3] + '/sae-empty')) == ['cfg.json', 'sae_weights.safetensors'], os.listdir(sys.argv[3] + '/sae-empty')
            for sae in ['sae-old', 'sae-empty']:
                assert json.load(open(sys.argv[3] + '/' + sae + '/cfg.json'))['d_sae'] == 400
                assert load_file(sys.argv[3] + '/' + sae + '/sae_weights.safetensors')['W_enc'].shape == (625, 400)
            print('ok')
            """, [run, Harness.embeddedFaces, out.path])
    }
}
