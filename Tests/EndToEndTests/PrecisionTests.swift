import AETrainCore
import Foundation
import XCTest

/// `--precision bf16` through the binary: accuracy against fp32 (the sheet's λ = 1 run and a
/// TopK run on vectors), bit-identity on 1, 2 and 4 ranks under mpirun, config.json and
/// resume, bench and encode. On a CPU without AVX512_BF16 every command is checked to refuse
/// bf16 with one line, before it writes anything.
final class PrecisionTests: XCTestCase {
    /// True where bf16 runs; elsewhere checks that `train`, `bench` and `encode` refuse it.
    func bf16Runs(in dir: URL) throws -> Bool {
        guard !Precision.bf16Available else { return true }
        let out = dir.appendingPathComponent("refused")
        for arguments in [["train", "--precision", "bf16", "--iterations", "3", "--out", out.path],
                          ["bench", "--precision", "bf16", "--steps", "3", "--warmup", "0"]] {
            let r = try Harness.aetrain(arguments)
            XCTAssertNotEqual(r.status, 0, arguments.joined(separator: " "))
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("AVX512_BF16"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a refused run wrote its directory")
        print("PrecisionTests: this CPU has no AVX512_BF16: bf16 checked as refused")
        return false
    }

    func lastLine(_ dir: URL) throws -> [String: Any] { try XCTUnwrap(try Harness.metrics(dir).last) }

    func config(_ dir: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any])
    }

    /// The sheet's λ = 1 run on the embedded faces, 20 held out (2,001 iterations, a short
    /// version of the docs' 10,001): rec and spa within 2%, held-out EV within 0.01; a TopK run
    /// on vectors: held-out EV within 0.01.
    func testBF16EndsCloseToFP32() throws {
        let dir = try Harness.temporaryDirectory("precision-accuracy")
        guard try bf16Runs(in: dir) else { return }
        let sheet = ["--lambda", "1", "--iterations", "2001", "--log-every", "1000", "--eval-fraction", "0.2", "--batch-size", "80", "--quiet"]
        let vectors = ["--activation", "topk", "--k", "8", "--hidden", "256", "--data", "synthetic:2000,8,8", "--eval-fraction", "0.1",
                       "--lr", "1e-3", "--iterations", "1001", "--log-every", "500", "--quiet"]
        for (name, arguments) in [("sheet", sheet), ("vectors", vectors)] {
            var last: [Precision: [String: Any]] = [:]
            for precision in Precision.allCases {
                let out = dir.appendingPathComponent("\(name)-\(precision.rawValue)")
                let r = try Harness.aetrain(["train", "--out", out.path] + arguments + (precision == .fp32 ? [] : ["--precision", "bf16"]))
                XCTAssertEqual(r.status, 0, r.stderr)
                last[precision] = try lastLine(out)
                let settings = try config(out)["settings"] as? [String: Any]
                XCTAssertEqual(settings?["precision"] as? String, precision == .fp32 ? nil : "bf16", "\(name): config.json records bf16 only")
            }
            let (a, b) = (try XCTUnwrap(last[.fp32]), try XCTUnwrap(last[.bf16]))
            func term(_ m: [String: Any], _ key: String) throws -> Double { try XCTUnwrap(m[key] as? Double, "\(name): \(key)") }
            if name == "sheet" {
                for key in ["rec", "spa"] {
                    let (x, y) = (try term(a, key), try term(b, key))
                    XCTAssertLessThan(abs(y - x) / x, 0.02, "\(name) \(key): fp32 \(x), bf16 \(y)")
                    XCTAssertNotEqual(x, y, "\(name) \(key): bf16 ran in fp32")
                }
            }
            let (x, y) = (try term(a, "eval_explained_variance"), try term(b, "eval_explained_variance"))
            XCTAssertLessThan(abs(y - x), 0.01, "\(name) held-out EV: fp32 \(x), bf16 \(y)")
            print("PrecisionTests: \(name): held-out EV fp32 \(x), bf16 \(y)")
        }
    }

    func testDeterministicBF16IsTheSameBytesOnOneTwoAndFourRanks() throws {
        let dir = try Harness.temporaryDirectory("precision-ranks")
        guard try bf16Runs(in: dir) else { return }
        try BitIdentity.assertRankCountsAgree([1, 2, 4], ["--lambda", "1", "--iterations", "301", "--log-every", "100", "--precision", "bf16"],
                                              in: dir.appendingPathComponent("relu"), launch: { try Harness.mpirun($0, $1) })
        let fp32 = dir.appendingPathComponent("relu-fp32")
        let r = try Harness.aetrain(["train", "--deterministic", "--quiet", "--lambda", "1", "--iterations", "301", "--log-every", "100", "--out", fp32.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let bf16 = dir.appendingPathComponent("relu/ranks1")
        XCTAssertNotEqual(try Data(contentsOf: fp32.appendingPathComponent("V.npy")), try Data(contentsOf: bf16.appendingPathComponent("V.npy")),
                          "the bf16 runs computed in fp32")
        try BitIdentity.assertRankCountsAgree([1, 2, 4], ["--activation", "topk", "--k", "8", "--hidden", "128", "--iterations", "201",
                                                          "--log-every", "100", "--precision", "bf16", "--kernels", "dense"],
                                              in: dir.appendingPathComponent("topk"), launch: { try Harness.mpirun($0, $1) },
                                              terms: ["rec", "reg", "l0", "loss", "explained_variance", "dead_units"])
    }

    /// A resume keeps the checkpoint's precision unless told, and says so in one line when told.
    func testResumeKeepsThePrecisionOrSaysItChanged() throws {
        let dir = try Harness.temporaryDirectory("precision-resume")
        guard try bf16Runs(in: dir) else { return }
        let out = dir.appendingPathComponent("run")
        var r = try Harness.aetrain(["train", "--lambda", "1", "--iterations", "200", "--log-every", "100", "--precision", "bf16", "--quiet", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try Harness.aetrain(["train", "--resume", out.path, "--iterations", "300", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse((r.stdout + r.stderr).contains("products"), "no precision note when it stays: \(r.stdout)\(r.stderr)")
        XCTAssertEqual((try config(out)["settings"] as? [String: Any])?["precision"] as? String, "bf16", "the resume continued in bf16")
        r = try Harness.aetrain(["train", "--resume", out.path, "--iterations", "400", "--precision", "fp32", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let notes = (r.stdout + r.stderr).split(separator: "\n").filter { $0.contains("bf16 products") }
        XCTAssertEqual(notes.count, 1, r.stdout + r.stderr)
        XCTAssertTrue(notes.first?.contains("continues with fp32 products") == true, "\(notes)")
        XCTAssertNil((try config(out)["settings"] as? [String: Any])?["precision"], "fp32 is recorded as nothing")
        XCTAssertEqual(try Harness.metrics(out).last?["iteration"] as? Int, 399)
    }

    func testBenchAndEncodeInBF16() throws {
        let dir = try Harness.temporaryDirectory("precision-bench-encode")
        guard try bf16Runs(in: dir) else { return }
        var r = try Harness.aetrain(["bench", "--precision", "bf16", "--lambda", "1", "--steps", "20", "--warmup", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(o["precision"] as? String, "bf16")
        XCTAssertTrue((o["products"] as? String)?.contains("vdpbf16ps") == true, r.stdout)
        XCTAssertGreaterThan(o["ms_per_step"] as? Double ?? 0, 0)
        r = try Harness.aetrain(["bench", "--steps", "10", "--warmup", "0"])
        XCTAssertTrue(r.stdout.contains("step: fp32 products (OpenBLAS sgemm)"), r.stdout)

        let run = dir.appendingPathComponent("run")
        r = try Harness.aetrain(["train", "--lambda", "1", "--iterations", "300", "--log-every", "100", "--quiet", "--out", run.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for precision in Precision.allCases {
            r = try Harness.aetrain(["encode", run.path, "--precision", precision.rawValue, "--out", dir.appendingPathComponent("codes-\(precision.rawValue).npy").path,
                                     "--reconstruct", dir.appendingPathComponent("x-\(precision.rawValue).npy").path])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        // bf16's codes and reconstruction: close to fp32's, and not the same bytes.
        let check = try Harness.python("""
            import numpy as np
            d = '\(dir.path)/'
            for name in ['codes', 'x']:
                a, b = np.load(d + name + '-fp32.npy'), np.load(d + name + '-bf16.npy')
                rel = np.linalg.norm(a - b) / np.linalg.norm(a)
                assert a.shape == b.shape and 0 < rel < 0.05, (name, rel)
                print(name, rel)
            """)
        XCTAssertEqual(check.status, 0, check.stderr)
    }
}
