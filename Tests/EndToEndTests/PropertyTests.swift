import AETrainCore
import Foundation
import XCTest

/// The binary driven with random flag values and small random files, a bounded number of
/// times: whatever the input, the exit code is a documented one (0, 1, 64), at most one
/// error line is printed per job, no crash trace appears, and `--out` is either untouched or
/// a valid run.
final class PropertyTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("property") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    struct Generator {
        var rng: Xoshiro256
        mutating func pick<T>(_ options: [T]) -> T { options[rng.below(options.count)] }
        mutating func chance(_ percent: Int) -> Bool { rng.below(100) < percent }
        mutating func int() -> String {
            pick(["0", "-1", "1", "2", "3", "7", "64", "100", "1000000000", "9223372036854775807", "-9223372036854775808",
                  "4294967296", "abc", "", "1e3", "2.5"])
        }
        mutating func real() -> String {
            pick(["0", "-1", "1e-4", "0.5", "1", "2", "1e30", "-1e30", "nan", "inf", "-inf", "abc", "", "1e308", "5e-324", "0.999999"])
        }
    }

    /// Small files of every kind the readers meet: good, truncated, mislabelled, random.
    func makeFiles(_ g: inout Generator, seed: UInt64) throws -> [String] {
        var paths: [String] = []
        let script = """
            import numpy as np, os
            d = "\(dir.path)"
            rng = np.random.default_rng(\(seed))
            np.save(f"{d}/good.npy", rng.random((40, 6, 5), dtype=np.float32))
            np.save(f"{d}/flat.npy", rng.random((40, 30), dtype=np.float32))
            np.save(f"{d}/u8.npy", rng.integers(0, 255, (30, 4, 4), dtype=np.uint8))
            np.save(f"{d}/f64.npy", rng.random((25, 3, 3)))
            np.save(f"{d}/nan.npy", np.full((20, 3, 3), np.nan, dtype=np.float32))
            np.save(f"{d}/one.npy", np.ones((20, 3, 3), dtype=np.float32))
            np.save(f"{d}/int64.npy", rng.integers(0, 9, (20, 3, 3)))
            np.save(f"{d}/cube.npy", rng.random((4, 4, 4, 4), dtype=np.float32))
            np.save(f"{d}/tiny.npy", rng.random((1, 2, 2), dtype=np.float32))
            b = open(f"{d}/good.npy", "rb").read()
            open(f"{d}/cut.npy", "wb").write(b[:len(b) // 2])
            open(f"{d}/head.npy", "wb").write(b[:60])
            open(f"{d}/noise.npy", "wb").write(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
            bad = bytearray(b); bad[8:80] = rng.integers(32, 127, 72, dtype=np.uint8).tobytes()
            open(f"{d}/header.npy", "wb").write(bytes(bad))
            np.save(f"{d}/half.npy", rng.random((30, 12)).astype("<f2"))
            from safetensors.numpy import save_file
            save_file({"x": rng.random((30, 12), dtype=np.float32), "y": rng.random((5, 4, 3), dtype=np.float32)}, f"{d}/st.safetensors")
            save_file({"x": rng.random((30, 12)).astype("<f2")}, f"{d}/half.safetensors")
            s = open(f"{d}/st.safetensors", "rb").read()
            open(f"{d}/stcut.safetensors", "wb").write(s[:len(s) // 2])
            sbad = bytearray(s); sbad[9:40] = rng.integers(32, 127, 31, dtype=np.uint8).tobytes()
            open(f"{d}/stheader.safetensors", "wb").write(bytes(sbad))
            open(f"{d}/stnoise.safetensors", "wb").write(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
            """
        let r = try Harness.python(script)
        XCTAssertEqual(r.status, 0)
        for name in ["good", "flat", "u8", "f64", "nan", "one", "int64", "cube", "tiny", "cut", "head", "noise", "header", "half"] {
            paths.append(dir.appendingPathComponent("\(name).npy").path)
        }
        for name in ["st.safetensors:x", "st.safetensors:y", "st.safetensors", "half.safetensors", "stcut.safetensors",
                     "stheader.safetensors", "stnoise.safetensors"] {
            paths.append(dir.appendingPathComponent(name).path)
        }
        return paths + ["embedded", "synthetic:50,4,4", "synthetic:0,4,4", "synthetic:3,2", "synthetic:-5,4,4", "synthetic:60,1,1",
                        dir.appendingPathComponent("missing.npy").path, dir.path, ""]
    }

    /// A run directory is either as it was, or holds a run that reads back.
    func assertUntouchedOrValid(_ out: URL, before: [String: Data], _ context: String) throws {
        let now = try snapshot(out)
        if now == before { return }
        let config = out.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: config), (try? JSONDecoder().decode(RunConfig.self, from: data)) != nil else {
            return XCTFail("\(context): --out changed and holds no readable config.json: \(now.keys.sorted())")
        }
        XCTAssertNoThrow(try Harness.metrics(out), context)
    }

    func snapshot(_ url: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return files }
        for name in names where name != ".lock" {
            let path = url.appendingPathComponent(name)
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir)
            files[name] = isDir.boolValue ? Data((try? FileManager.default.contentsOfDirectory(atPath: path.path).sorted().joined())?.utf8 ?? "".utf8)
                                          : (try? Data(contentsOf: path)) ?? Data()
        }
        return files
    }

    func testRandomFlagsAndFilesNeverCrash() throws {
        // Each run draws other cases: AETRAIN_TEST_SEED=S repeats the run that printed seed S.
        let given = ProcessInfo.processInfo.environment["AETRAIN_TEST_SEED"].flatMap { UInt64($0) }
        let seed = given ?? UInt64(Date().timeIntervalSince1970 * 1e6) % 1_000_000_007
        print("property test: seed \(seed) (AETRAIN_TEST_SEED=\(seed) repeats this run)")
        var g = Generator(rng: Xoshiro256(seed: seed))
        let files = try makeFiles(&g, seed: seed)
        // A valid run that the cases may write into: it must survive or stay a valid run.
        let out = dir.appendingPathComponent("out")
        XCTAssertEqual(try Harness.aetrain(["train", "--quiet", "--data", "synthetic:50,4,4", "--hidden", "8", "--batch-size", "10",
                                            "--iterations", "3", "--out", out.path]).status, 0)
        let trainFlags = ["--hidden", "--lambda", "--eps", "--eta", "--lr", "--batch-size", "--seed", "--iterations", "--log-every",
                          "--beta1", "--beta2", "--adam-eps", "--entropy-floor", "--image-shape", "--checkpoint-every",
                          "--keep-checkpoints", "--threads", "--sparse-below", "--peer-timeout", "--eval-fraction", "--lfw-resize",
                          "--decoder-norm", "--lr-warmup", "--lr-decay", "--lambda-warmup"]
        let deadline = Date().addingTimeInterval(150)
        var cases = 0
        while cases < 40, Date() < deadline {  // each run draws its own 40: coverage grows across runs
            cases += 1
            var args: [String]
            switch g.rng.below(4) {
            case 0: args = ["pca", "--components", g.int()]
            case 1: args = ["bench", "--steps", g.pick(["1", "2", "0", "-1", "abc"]), "--warmup", "0", "--examples", g.pick(["50", "0", "3", "1000000000000"]),
                            "--image-shape", g.pick(["4x4", "0x4", "4611686018427387908x4", "axb", "37x28"]), "--hidden", g.pick(["8", "0", "-2", "1000000000"])]
            default:
                args = ["train", "--model", g.pick(["sparse-autoencoder", "sparse-coding", "tied-linear", "pca", "nope"]),
                        "--iterations", g.pick(["2", "3", "0", "-1"])]
                for _ in 0..<(1 + g.rng.below(3)) {
                    let flag = g.pick(trainFlags)
                    if flag == "--iterations" { continue }
                    let value: String = switch flag {
                    case "--image-shape": g.pick(["5x6", "6x5", "30x1", "0x3", "4611686018427387908x4", "x", "3x3"])
                    case "--hidden", "--batch-size", "--seed", "--log-every", "--checkpoint-every", "--keep-checkpoints", "--threads",
                         "--lr-warmup", "--lambda-warmup": g.int()
                    case "--decoder-norm": g.pick(["unit", "none", "", "sideways"])
                    default: g.real()
                    }
                    args += value.hasPrefix("-") ? ["\(flag)=\(value)"] : [flag, value]
                }
                if g.chance(30) { args.append("--overwrite") }
            }
            if g.chance(85) { args += ["--data", g.pick(files)] }
            args += ["--out", out.path]
            if args[0] == "bench" { args.removeLast(2) }
            let before = try snapshot(out)
            let ranks = g.chance(25) ? 2 : 1
            let r = ranks == 1 ? try Harness.aetrain(args, timeout: 60) : try Harness.mpirun(2, args, timeout: 60)
            let context = "seed \(seed), case \(cases), \(ranks) rank(s): aetrain \(args.joined(separator: " ")) → \(r.status)\n\(r.stderr)"
            XCTAssertTrue([0, 1, 64].contains(r.status), "exit code: \(context)")
            XCTAssertLessThanOrEqual(r.errorLines.count, 1, "one error line at most: \(context)")
            for crash in ["Fatal error", "Backtrace", "Stack dump", "Segmentation", "munmap_chunk", "core dumped", "Abort"] {
                XCTAssertFalse(r.stderr.contains(crash) || r.stdout.contains(crash), "no crash trace (\(crash)): \(context)")
            }
            if r.status != 0 { XCTAssertEqual(r.errorLines.count, 1, "a failure says why: \(context)") }
            if args[0] != "bench" { try assertUntouchedOrValid(out, before: before, context) }
        }
        print("property test: \(cases) cases, seed \(seed)")
        XCTAssertGreaterThanOrEqual(cases, 20, "enough cases in the time allowed (seed \(seed))")
    }
}
