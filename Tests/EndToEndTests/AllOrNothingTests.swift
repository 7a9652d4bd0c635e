import AETrainCore
import Foundation
import XCTest

/// Every output is a set of files that appears complete or not at all (docs/outputs.md,
/// "What a reader sees"): a refused command leaves the tree as it found it, a full disk or a
/// SIGKILL at any moment leaves the old set or the new one, never a mix.
final class AllOrNothingTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Harness.temporaryDirectory("allornothing") }
    override func tearDownWithError() throws {
        if let dir, FileManager.default.fileExists(atPath: dir.appendingPathComponent("mnt").path) {
            _ = try? Harness.run("/bin/umount", [dir.appendingPathComponent("mnt").path])
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// Every entry under `root`: its kind, size, modification time and a hash of its contents.
    static func tree(_ root: URL) -> [String: String] {
        var entries: [String: String] = [:]
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: root.path)) ?? [] {
            let path = root.appendingPathComponent(name).path
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let hash = (info.st_mode & S_IFMT) == S_IFREG
                ? String(FNV1a.hash(FileManager.default.contents(atPath: path) ?? Data()), radix: 16) : "-"
            entries[name] = "mode \(String(info.st_mode, radix: 8)) size \(info.st_size) mtime \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(hash)"
        }
        return entries
    }

    /// What differs between two trees, for a failure message.
    static func difference(_ a: [String: String], _ b: [String: String]) -> String {
        Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted().map { "\($0): \(a[$0] ?? "absent") → \(b[$0] ?? "absent")" }
            .joined(separator: "; ")
    }

    /// A small finished run (h = 16 on the embedded faces) in `dir/name`.
    func smallRun(_ name: String, iterations: Int = 20, hidden: Int = 16) throws -> URL {
        let run = dir.appendingPathComponent(name)
        let r = try Harness.aetrain(["train", "--quiet", "--iterations", "\(iterations)", "--hidden", "\(hidden)", "--out", run.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return run
    }

    // MARK: refused commands

    /// Each command of `aetrain help` with each bad path it takes: one error line, nonzero,
    /// and the tree (kind, size, mtime, contents of every entry) exactly as before.
    func testEveryRefusedCommandLeavesTheTreeAsItWas() throws {
        let run = try smallRun("run")
        let ws = dir.appendingPathComponent("ws")
        for sub in ["empty", "stray", "lfw/Ann_Lee"] {
            try FileManager.default.createDirectory(at: ws.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        for (name, text) in [("a-file", "x"), ("old.npy", "old codes"), ("stray/notes.txt", "mine"), ("lfw/Ann_Lee/Ann_Lee_0001.jpg", "not a jpeg")] {
            try Data(text.utf8).write(to: ws.appendingPathComponent(name))
        }
        func p(_ name: String) -> String { ws.appendingPathComponent(name).path }
        let missing = p("missing.npy"), file = p("a-file")
        let r = run.path
        let cases: [[String]] = [
            // train: --out, --tensorboard, --trace, --eval-data, --data, --init, --resume
            ["train", "--iterations", "5", "--out", file],
            ["train", "--iterations", "5", "--out", p("a-file/sub")],
            ["train", "--iterations", "5", "--out", r],
            ["train", "--iterations", "5", "--out", p("t1"), "--tensorboard", file],
            ["train", "--iterations", "5", "--out", p("t2"), "--tensorboard", "/proc/self"],
            ["train", "--iterations", "5", "--out", p("t3"), "--trace", ws.path],
            ["train", "--iterations", "5", "--out", p("t4"), "--trace", p("no-dir/trace.json")],
            ["train", "--iterations", "5", "--out", p("t5"), "--eval-data", missing],
            ["train", "--iterations", "5", "--out", p("t6"), "--eval-data", file],
            ["train", "--iterations", "5", "--out", p("t7"), "--data", missing],
            ["train", "--iterations", "5", "--out", p("t8"), "--data", file],
            ["train", "--iterations", "5", "--out", p("t9"), "--init", p("empty")],
            ["train", "--iterations", "5", "--out", p("t10"), "--init", missing],
            ["train", "--iterations", "5", "--resume", p("empty")],
            ["train", "--iterations", "5", "--out", p("t11"), "--data", p("empty")],
            ["train", "--iterations", "5", "--out", p("t12"), "--eval-data", p("lfw")],
            // flags whose help or README says "refused"
            ["train", "--iterations", "5", "--out", p("t13"), "--model", "tied-linear", "--lambda", "1"],
            ["train", "--iterations", "5", "--out", p("t14"), "--gradient-sum", "shared-memory"],
            ["pca", "--normalize", "none", "--out", p("pca3")],
            ["bench", "--steps", "2", "--warmup", "0", "--gradient-sum", "shared-memory"],
            // encode: the run, --data, --out, --reconstruct
            ["encode", p("empty"), "--out", p("e1.npy")],
            ["encode", missing, "--out", p("e2.npy")],
            ["encode", r, "--out", p("no-dir/e3.npy")],
            ["encode", r, "--out", p("old.npy")],
            ["encode", r, "--out", p("e4.npy"), "--reconstruct", p("old.npy")],
            ["encode", r, "--out", p("e5.npy"), "--data", missing],
            ["encode", r, "--out", p("e6.npy"), "--reconstruct", p("no-dir/r.npy")],
            ["encode", r, "--out", r + "/V.npy", "--overwrite"],
            ["encode", r, "--out", ws.path],
            // export: the run, --out
            ["export", missing, "--format", "saelens", "--out", p("x1")],
            ["export", r, "--format", "saelens", "--out", file],
            ["export", r, "--format", "saelens", "--out", p("stray")],
            ["export", r, "--format", "saelens", "--out", r],
            ["export", p("empty"), "--format", "saelens", "--out", p("x2")],
            ["export", r, "--format", "saelens", "--out", p("a-file/x3")],
            // pca: --data, --out
            ["pca", "--data", missing, "--out", p("pca1")],
            ["pca", "--out", file],
            ["pca", "--out", r],
            ["pca", "--out", p("pca2"), "--data", p("lfw")],
            // compare and report: the runs, --out
            ["compare", missing, "--out", p("c1")],
            ["compare", p("empty"), "--out", p("c2")],
            ["compare", r, "--out", file],
            ["compare", r, "--out", p("a-file/c3")],
            ["report", missing, "--out", p("r1.html")],
            ["report", r, "--out", ws.path],
            ["report", r, "--out", p("no-dir/r2.html")],
            ["report", r, "--out", r + "/config.json"],
            // prepare-lfw: the tree, --out
            ["prepare-lfw", missing, "--out", p("f1.npy")],
            ["prepare-lfw", file, "--out", p("f2.npy")],
            ["prepare-lfw", p("lfw"), "--out", p("f3.npy")],
            ["prepare-lfw", p("lfw"), "--out", p("no-dir/f4.npy")],
            ["prepare-lfw", p("lfw"), "--out", p("lfw/Ann_Lee/out.npy")],
            // bench: --data, --init, --trace
            ["bench", "--steps", "2", "--warmup", "0", "--data", missing],
            ["bench", "--steps", "2", "--warmup", "0", "--init", p("empty")],
            ["bench", "--steps", "2", "--warmup", "0", "--trace", ws.path],
            ["bench", "--steps", "2", "--warmup", "0", "--trace", p("no-dir/trace.json")],
        ]
        // Every command of `aetrain help` is here.
        let help = try Harness.aetrain(["help"])
        for command in ["train", "prepare-lfw", "pca", "compare", "report", "bench", "encode", "export"] {
            XCTAssertTrue(help.stdout.contains("  \(command) "), "help lists \(command): \(help.stdout)")
            XCTAssertTrue(cases.contains { $0[0] == command }, "\(command) has a case")
        }
        let before = Self.tree(dir)
        for batch in stride(from: 0, to: cases.count, by: 4).map({ Array(cases[$0..<min(cases.count, $0 + 4)]) }) {
            let results = try Harness.runAll(batch.map { Harness.Command(Harness.aetrain, $0, directory: ws) })
            for (args, result) in zip(batch, results) {
                XCTAssertNotEqual(result.status, 0, "\(args): refused")
                XCTAssertEqual(result.errorLines.count, 1, "\(args): one error line: \(result.stderr)")
                XCTAssertFalse(result.stderr.contains("Fatal error"), "\(args): \(result.stderr)")
            }
            let now = Self.tree(dir)
            XCTAssertTrue(now == before, "\(batch.map { $0.prefix(2).joined(separator: " ") }) changed: \(Self.difference(before, now))")
        }
    }

    // MARK: the run's final files

    /// The final set of a sparse autoencoder's run on the embedded faces, by name.
    static let finalNames = ["V.npy", "W.npy", "b.npy", "a.npy", "model.safetensors", "filters.png", "activations.npy", "mean.npy",
                             "feature_density.svg", "feature_density.npy"]

    func finalSet(_ run: URL) -> [String: Data] {
        var set: [String: Data] = [:]
        for name in Self.finalNames { set[name] = FileManager.default.contents(atPath: run.appendingPathComponent(name).path) }
        return set
    }

    /// A resumed run replaces its final files on a disk too small for them (a small tmpfs, at
    /// sizes from where nothing new fits to where everything does): the run directory holds the
    /// previous session's whole set or the new session's whole set, never V from one beside W
    /// from the other, and no staged file is left behind.
    func testAFullDiskLeavesTheOldFinalFilesOrTheNewOnes() throws {
        XCTAssertEqual(getuid(), 0, "mounting a small tmpfs needs root")
        let first = try smallRun("first", iterations: 20, hidden: 64)
        let resume = ["train", "--quiet", "--iterations", "40", "--checkpoint-every", "0"]
        // The new set, from the same resume on an unbounded disk (training is deterministic).
        // Named as the run on the tmpfs: feature_density.svg's title is the directory's name.
        let reference = dir.appendingPathComponent("reference/run")
        try FileManager.default.createDirectory(at: reference.deletingLastPathComponent(), withIntermediateDirectories: true)
        XCTAssertEqual(try Harness.run("/bin/cp", ["-a", first.path, reference.path]).status, 0)
        let done = try Harness.aetrain(resume + ["--resume", reference.path])
        XCTAssertEqual(done.status, 0, done.stderr)
        let old = finalSet(first), new = finalSet(reference)
        XCTAssertEqual(old.count, Self.finalNames.count)
        XCTAssertEqual(new.count, Self.finalNames.count)
        XCTAssertNotEqual(old["V.npy"], new["V.npy"])
        func pages(_ url: URL) -> Int {
            ((try? FileManager.default.subpathsOfDirectory(atPath: url.path)) ?? []).map { name -> Int in
                let size = (try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent(name).path))?[.size] as? Int ?? 0
                return (size + 4095) / 4096 + 1
            }.reduce(0, +)
        }
        let base = pages(first), extra = pages(reference) - base
        let mount = dir.appendingPathComponent("mnt")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        var outcomes: [Int32] = []
        for size in stride(from: base + 2, through: base + 2 * extra + 40, by: max(2, extra / 6)) {
            let m = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size * 4)k", "tmpfs", mount.path])
            XCTAssertEqual(m.status, 0, m.stderr)
            defer { _ = try? Harness.run("/bin/umount", [mount.path]) }
            let run = mount.appendingPathComponent("run")
            guard try Harness.run("/bin/cp", ["-a", first.path, run.path]).status == 0 else { continue }  // the old run does not fit
            let r = try Harness.aetrain(resume + ["--resume", run.path])
            outcomes.append(r.status)
            if r.status != 0 { XCTAssertEqual(r.errorLines.count, 1, r.stderr) }
            let now = finalSet(run)
            XCTAssertTrue(now == old || now == new, "\(size) pages, status \(r.status): "
                          + Self.finalNames.map { "\($0) \(now[$0] == old[$0] ? "old" : now[$0] == new[$0] ? "new" : "other")" }.joined(separator: ", "))
            if r.status == 0 { XCTAssertEqual(now, new, "\(size) pages: a finished run has its new files") }
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []).filter {
                $0.contains(".tmp-") || $0.contains(".replaced-")
            }
            XCTAssertEqual(leftovers, [], "\(size) pages: left behind")
        }
        XCTAssertTrue(outcomes.contains(0) && outcomes.contains { $0 != 0 }, "the sizes span failure and success: \(outcomes)")
    }

    // MARK: encode's codes and reconstruction

    /// The rows of an encode output (an `.npy` whose size matches its header), nil when absent;
    /// a torn or unreadable file fails the test.
    func rows(_ url: URL, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            let reader = try NPYReader(path: url.path)
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            let expected = reader.header.dataOffset + reader.header.shape.reduce(1, *) * 4
            XCTAssertEqual(size, expected, "\(url.lastPathComponent) is whole", file: file, line: line)
            return reader.header.shape[0]
        } catch {
            XCTFail("\(url.lastPathComponent): \(error)", file: file, line: line)
            return -1
        }
    }

    /// `encode --overwrite` with and without ⟨reconstruct⟩ on a disk too small for the new
    /// outputs (200 rows replacing 100): the codes and the reconstruction are both the old
    /// ones or both the new ones, and nothing staged is left.
    func testAFullDiskLeavesTheOldCodesOrTheNewOnes() throws {
        XCTAssertEqual(getuid(), 0, "mounting a small tmpfs needs root")
        let run = try smallRun("run", hidden: 64)
        let mount = dir.appendingPathComponent("mnt")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        // Old: 100 rows, codes 25 KiB + reconstruction 244 KiB; new: 200 rows, twice as much.
        for reconstruct in [false, true] {
            var outcomes: [Int32] = []
            let total = reconstruct ? 810 : 80  // KiB of the old pair and the new pair together
            for size in stride(from: total / 2, through: total + 40, by: reconstruct ? 48 : 8) {
                let m = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)k", "tmpfs", mount.path])
                XCTAssertEqual(m.status, 0, m.stderr)
                defer { _ = try? Harness.run("/bin/umount", [mount.path]) }
                let codes = mount.appendingPathComponent("codes.npy"), rec = mount.appendingPathComponent("rec.npy")
                let outputs = ["--out", codes.path] + (reconstruct ? ["--reconstruct", rec.path] : [])
                guard try Harness.aetrain(["encode", run.path, "--quiet", "--data", "synthetic:100,25,25"] + outputs).status == 0 else {
                    continue  // the old outputs do not fit
                }
                let r = try Harness.aetrain(["encode", run.path, "--quiet", "--data", "synthetic:200,25,25", "--overwrite"] + outputs)
                outcomes.append(r.status)
                if r.status != 0 { XCTAssertEqual(r.errorLines.count, 1, r.stderr) }
                let now = [rows(codes)] + (reconstruct ? [rows(rec)] : [])
                let expected = r.status == 0 ? 200 : 100
                XCTAssertEqual(now, Array(repeating: expected, count: now.count), "\(size) KiB, status \(r.status)")
                let names = try FileManager.default.contentsOfDirectory(atPath: mount.path).sorted()
                XCTAssertEqual(names, reconstruct ? ["codes.npy", "rec.npy"] : ["codes.npy"], "\(size) KiB: left behind")
            }
            XCTAssertTrue(outcomes.contains(0) && outcomes.contains { $0 != 0 }, "reconstruct \(reconstruct): \(outcomes)")
        }
    }

    /// SIGKILL at random moments of `encode --overwrite --reconstruct`: the pair is the old one,
    /// the new one, or part of one of them while it is swapped (never an old file beside a new
    /// one); what is left beside them is only temporary names, which the next encode removes.
    func testAKilledEncodeNeverLeavesAMix() throws {
        let run = try smallRun("run", hidden: 64)
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let codes = out.appendingPathComponent("codes.npy"), rec = out.appendingPathComponent("rec.npy")
        func encode(_ n: Int) -> [String] {
            ["encode", run.path, "--quiet", "--overwrite", "--data", "synthetic:\(n),25,25", "--out", codes.path, "--reconstruct", rec.path]
        }
        XCTAssertEqual(try Harness.aetrain(encode(3000)).status, 0)
        let started = Date()
        XCTAssertEqual(try Harness.aetrain(encode(4000)).status, 0)
        let duration = Date().timeIntervalSince(started)
        var seen: Set<String> = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<16 {
            XCTAssertEqual(try Harness.aetrain(encode(3000)).status, 0, "round \(round): the old pair")
            let job = try Harness.start(Harness.aetrain, encode(4000))
            usleep(UInt32(Double.random(in: 0.2...1.05, using: &generator) * duration * 1e6))
            kill(job.pid, SIGKILL)
            _ = job.wait(timeout: 30)
            let pair = [rows(codes), rows(rec)]
            seen.insert("\(pair)")
            XCTAssertFalse(pair.contains(3000) && pair.contains(4000), "round \(round): a mix \(pair)")
            let others = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !["codes.npy", "rec.npy"].contains($0) }
            for name in others {
                XCTAssertTrue(name.hasPrefix(".codes.npy.") || name.hasPrefix(".rec.npy."), "round \(round): \(name)")
                XCTAssertNotNil(FileSet.leftoverTarget(name), "round \(round): \(name) is a temporary name")
            }
            // The next encode removes them.
            XCTAssertEqual(try Harness.aetrain(encode(4000)).status, 0)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), ["codes.npy", "rec.npy"], "round \(round)")
            XCTAssertEqual([rows(codes), rows(rec)], [4000, 4000])
        }
        print("encode killed at random moments: \(seen.sorted())")
    }

    /// SIGKILL at random moments of `export --overwrite`: the directory is the old export, the
    /// new one or absent, never new weights beside an old cfg.json; what is left beside it is
    /// only `.DIR.staging-PID` or `.DIR.replaced-PID`, which the next export removes.
    func testAKilledExportNeverLeavesAMix() throws {
        let small = try smallRun("small", hidden: 16), big = try smallRun("big", hidden: 256)
        let sae = dir.appendingPathComponent("sae")
        func export(_ run: URL) -> [String] { ["export", run.path, "--format", "saelens", "--quiet", "--overwrite", "--out", sae.path] }
        func dSAE() -> Int? {
            guard let data = FileManager.default.contents(atPath: sae.appendingPathComponent("cfg.json").path) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["d_sae"] as? Int
        }
        func weights() -> Int? {
            guard let w = try? SafeTensorsReader(path: sae.appendingPathComponent("sae_weights.safetensors").path, tensor: "W_enc") else { return nil }
            return w.shape.last
        }
        XCTAssertEqual(try Harness.aetrain(export(small)).status, 0)
        let started = Date()
        XCTAssertEqual(try Harness.aetrain(export(big)).status, 0)
        let duration = Date().timeIntervalSince(started)
        var seen: Set<String> = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<16 {
            XCTAssertEqual(try Harness.aetrain(export(small)).status, 0, "round \(round): the old export")
            let job = try Harness.start(Harness.aetrain, export(big))
            usleep(UInt32(Double.random(in: 0.2...1.05, using: &generator) * duration * 1e6))
            kill(job.pid, SIGKILL)
            _ = job.wait(timeout: 30)
            let state = FileManager.default.fileExists(atPath: sae.path) ? "\(dSAE() ?? -1)/\(weights() ?? -1)" : "absent"
            seen.insert(state)
            XCTAssertTrue(["16/16", "256/256", "absent"].contains(state), "round \(round): \(state)")
            if state != "absent" {
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sae.path).sorted(), ["cfg.json", "sae_weights.safetensors"])
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasPrefix(".sae.") {
                XCTAssertTrue(name.hasPrefix(".sae.staging-") || name.hasPrefix(".sae.replaced-"), "round \(round): \(name)")
            }
            XCTAssertEqual(try Harness.aetrain(export(big)).status, 0)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".sae.") }, [], "round \(round)")
            XCTAssertEqual(dSAE(), 256)
        }
        print("export killed at random moments: \(seen.sorted())")
    }

    /// The red team's case: a small export replaced by a much bigger one on a nearly full disk
    /// (the disk fills between the two files of the new export, or before): the old export
    /// stays whole, nothing is staged behind, and the error is one line.
    func testASmallExportReplacedByABigOneOnAFullDisk() throws {
        XCTAssertEqual(getuid(), 0, "mounting a small tmpfs needs root")
        let small = try smallRun("small", hidden: 8), big = try smallRun("big", hidden: 64)
        let mount = dir.appendingPathComponent("mnt")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        // The small export: ~40 KiB; the big one ~320 KiB (W_enc and W_dec, 625 × 64 float32 each).
        var outcomes: [Int32] = []
        for size in stride(from: 100, through: 460, by: 40) {
            let m = try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)k", "tmpfs", mount.path])
            XCTAssertEqual(m.status, 0, m.stderr)
            defer { _ = try? Harness.run("/bin/umount", [mount.path]) }
            let sae = mount.appendingPathComponent("sae")
            XCTAssertEqual(try Harness.aetrain(["export", small.path, "--format", "saelens", "--quiet", "--out", sae.path]).status, 0)
            let old = Self.tree(sae).mapValues { $0.split(separator: " ").last.map(String.init) ?? "" }
            let r = try Harness.aetrain(["export", big.path, "--format", "saelens", "--quiet", "--overwrite", "--out", sae.path])
            outcomes.append(r.status)
            let now = Self.tree(sae).mapValues { $0.split(separator: " ").last.map(String.init) ?? "" }
            if r.status != 0 {
                XCTAssertEqual(r.errorLines.count, 1, r.stderr)
                XCTAssertEqual(now, old, "\(size) KiB: the old export is whole")
            } else {
                XCTAssertNotEqual(now, old)
                XCTAssertTrue(r.stderr.isEmpty, r.stderr)
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mount.path), ["sae"], "\(size) KiB: left behind")
        }
        XCTAssertTrue(outcomes.contains(0) && outcomes.contains { $0 != 0 }, "the sizes span failure and success: \(outcomes)")
    }

    // MARK: the newest checkpoint of a run being trained

    /// `--checkpoint latest` reads the newest complete checkpoint of a run that is being trained
    /// (without it, encode and export refuse the run); once the run has stopped, the newest
    /// checkpoint holds the final weights, and its codes equal those of the final files.
    func testTheNewestCheckpointOfARunBeingTrained() throws {
        let run = try smallRun("run", hidden: 32)
        let job = try Harness.start(Harness.aetrain, ["train", "--quiet", "--resume", run.path, "--iterations", "100000000",
                                                      "--log-every", "10", "--checkpoint-every", "20", "--keep-checkpoints", "2"])
        defer { if job.process.isRunning { kill(job.pid, SIGKILL) } }
        let checkpoints = run.appendingPathComponent("checkpoints")
        let deadline = Date().addingTimeInterval(120)
        while (CheckpointFolder(run: run).files().first.flatMap { Int($0.lastPathComponent.dropFirst(5).dropLast(5)) } ?? 0) < 60,
              Date() < deadline, job.process.isRunning { usleep(100_000) }
        XCTAssertTrue(job.process.isRunning, "the run is training")
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let refused = try Harness.aetrain(["encode", run.path, "--out", out.appendingPathComponent("refused.npy").path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("is being trained"), refused.stderr)
        // Several reads while checkpoints are written and pruned.
        for k in 0..<3 {
            let results = try Harness.runAll([
                Harness.Command(Harness.aetrain, ["encode", run.path, "--quiet", "--checkpoint", "latest", "--reconstruct",
                                                  out.appendingPathComponent("rec\(k).npy").path, "--out", out.appendingPathComponent("codes\(k).npy").path]),
                Harness.Command(Harness.aetrain, ["export", run.path, "--quiet", "--checkpoint", "latest", "--format", "saelens",
                                                  "--out", out.appendingPathComponent("sae\(k)").path]),
            ])
            for r in results { XCTAssertEqual(r.status, 0, r.stderr) }
            XCTAssertEqual(rows(out.appendingPathComponent("codes\(k).npy")), 100)
        }
        XCTAssertTrue(job.process.isRunning, "the run was training throughout")
        XCTAssertGreaterThan(try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).count, 0)
        kill(job.pid, SIGTERM)
        XCTAssertEqual(job.wait(timeout: 60).status, 0)
        let final = try Harness.runAll([
            Harness.Command(Harness.aetrain, ["encode", run.path, "--quiet", "--out", out.appendingPathComponent("final.npy").path]),
            Harness.Command(Harness.aetrain, ["encode", run.path, "--quiet", "--checkpoint", "latest", "--out", out.appendingPathComponent("latest.npy").path]),
        ])
        for r in final { XCTAssertEqual(r.status, 0, r.stderr) }
        let a = try NPYReader(path: out.appendingPathComponent("final.npy").path).readAll()
        let b = try NPYReader(path: out.appendingPathComponent("latest.npy").path).readAll()
        XCTAssertEqual(a.count, b.count)
        let scale = a.map(abs).max() ?? 1
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-5 * scale, "the newest checkpoint's codes are the final files' codes")
        // A run without checkpoints: one line.
        let none = try smallRun("none", hidden: 8)
        try FileManager.default.removeItem(at: none.appendingPathComponent("checkpoints"))
        let r = try Harness.aetrain(["export", none.path, "--checkpoint", "latest", "--format", "saelens", "--out", out.appendingPathComponent("x").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("no checkpoint to read"), r.stderr)
    }
}
