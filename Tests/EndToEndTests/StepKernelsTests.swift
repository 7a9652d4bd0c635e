import AETrainCore
import Foundation
import XCTest

/// The binary with the step's execution choices: the sparse kernels and the overlapped
/// allreduce compute the same training run as the plain dense step.
final class StepKernelsTests: XCTestCase {
    func files(_ dir: URL) throws -> [Data] {
        try ["V.npy", "W.npy", "b.npy", "a.npy"].map { try Data(contentsOf: dir.appendingPathComponent($0)) }
    }

    /// Overlapped (three non-blocking allreduces started as gradients become ready) against
    /// one blocking allreduce. With 2 ranks each sum is a + b either way, so the runs are
    /// bit-identical; with 3 the reduction order may differ, so they agree within rounding.
    func testOverlappedAllreduceComputesTheSameRun() throws {
        var dirs: [URL] = []
        defer { for d in dirs { try? FileManager.default.removeItem(at: d) } }
        for ranks in [2, 3] {
            var pair: [URL] = []
            for mode in ["always", "never"] {
                let out = try Harness.temporaryDirectory("overlap-\(ranks)-\(mode)")
                dirs.append(out)
                pair.append(out)
                let r = try Harness.mpirun(ranks, ["train", "--out", out.path, "--iterations", "200", "--log-every", "50",
                                                   "--lambda", "1", "--overlap", mode, "--debug-rank-checksums"])
                XCTAssertEqual(r.status, 0, r.stderr)
                let sums = try (0..<ranks).map { try String(contentsOf: out.appendingPathComponent("checksum.rank\($0)"), encoding: .utf8) }
                XCTAssertEqual(Set(sums).count, 1, "\(ranks) ranks, overlap \(mode): \(sums)")
            }
            if ranks == 2 {
                XCTAssertEqual(try files(pair[0]), try files(pair[1]), "2 ranks: overlapped and blocking runs differ")
            } else {
                XCTAssertLessThan(try Harness.relativeDifference(pair[0], pair[1]), 0.02)
            }
        }
    }

    /// The sheet's sparse model on the sparse kernels against the dense ones, one process and
    /// two ranks: the same trajectory within float rounding (Adam magnifies rounding in
    /// near-zero gradients into lr-sized steps, hence 2% on the weights as across rank counts).
    func testSparseKernelsFollowTheDenseTrajectory() throws {
        var dirs: [URL] = []
        defer { for d in dirs { try? FileManager.default.removeItem(at: d) } }
        for ranks in [1, 2] {
            var pair: [URL] = []
            for kernels in ["sparse", "dense"] {
                let out = try Harness.temporaryDirectory("kernels-\(ranks)-\(kernels)")
                dirs.append(out)
                pair.append(out)
                let r = try Harness.mpirun(ranks, ["train", "--out", out.path, "--iterations", "1001", "--log-every", "250",
                                                   "--lambda", "1", "--kernels", kernels])
                XCTAssertEqual(r.status, 0, r.stderr)
                let fractions = try Harness.metrics(out).dropFirst().map { $0["sparse_step_fraction"] as? Double ?? -1 }
                XCTAssertEqual(Set(fractions), [kernels == "sparse" ? 1 : 0], "\(kernels): \(fractions)")
            }
            XCTAssertLessThan(try Harness.relativeDifference(pair[0], pair[1]), 0.02, "\(ranks) rank(s)")
            for (a, b) in zip(try Harness.metrics(pair[0]), try Harness.metrics(pair[1])) {
                for key in ["rec", "spa", "ent", "reg", "loss"] {
                    let x = a[key] as? Double ?? .nan, y = b[key] as? Double ?? .nan
                    XCTAssertEqual(x, y, accuracy: 0.005 * max(abs(y), 1), "\(ranks) rank(s): \(key) at \(a["iteration"] ?? "?")")
                }
            }
        }
        // auto: dense while the model is dense, sparse once few units fire (the default λ = 1
        // run falls below 8% nonzero within its first few thousand iterations).
        let out = try Harness.temporaryDirectory("kernels-auto")
        dirs.append(out)
        let r = try Harness.aetrain(["train", "--out", out.path, "--iterations", "4001", "--log-every", "1000", "--lambda", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let fractions = try Harness.metrics(out).map { $0["sparse_step_fraction"] as? Double ?? -1 }
        XCTAssertEqual(fractions[1], 0, "\(fractions)")
        XCTAssertEqual(fractions.last, 1, "\(fractions)")
    }

    /// The crossover benchmark: both kernels timed at each density, reached as asked. Each
    /// unit's bias is set halfway between the c-th and (c + 1)-th largest of its n sorted
    /// pre-activations (c = round(f·n), n = the 1000 examples here), so exactly c rows fire.
    /// With the batch holding every example, the measured density is c/n with no sampling
    /// error, ± the JSON's rounding to 4 decimals and the drift of the few timed steps.
    func testSparsityBenchmark() throws {
        let n = 1000
        let r = try Harness.aetrain(["bench", "--sparsity", "--densities", "0.01", "0.3", "--examples", "\(n)", "--batch-size", "\(n)",
                                     "--image-shape", "10x10", "--hidden", "100", "--steps", "10", "--warmup", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let results = object?["results"] as? [[String: Double]] ?? []
        XCTAssertEqual(results.map { $0["density"] ?? 0 }, [0.01, 0.3])
        for row in results {
            let target = row["density"] ?? 0, measured = row["measured_density"] ?? 0
            let c = (target * Double(n)).rounded()
            XCTAssertEqual(measured, c / Double(n), accuracy: 2e-4, "exactly round(f·n) of n rows fire: \(row)")
            XCTAssertGreaterThan(row["dense_ms"] ?? 0, 0)
            XCTAssertGreaterThan(row["sparse_ms"] ?? 0, 0)
        }
        XCTAssertEqual(object?["d"] as? Int, 100)
        XCTAssertEqual(object?["hidden"] as? Int, 100)
        XCTAssertGreaterThan(object?["gemm_floor_ms"] as? Double ?? 0, 0)
    }

    /// `bench --data --init`: a trained model's weights, timed on its own data.
    func testBenchTimesTrainedWeights() throws {
        let out = try Harness.temporaryDirectory("bench-init")
        defer { try? FileManager.default.removeItem(at: out) }
        let train = try Harness.aetrain(["train", "--out", out.path, "--iterations", "20", "--hidden", "64", "--lambda", "1"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let r = try Harness.aetrain(["bench", "--data", "embedded", "--init", out.path, "--kernels", "sparse",
                                     "--steps", "10", "--warmup", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["hidden"] as? Int, 64)
        XCTAssertEqual(object?["d"] as? Int, 625)
        XCTAssertEqual(object?["examples"] as? Int, 100)
        XCTAssertGreaterThan(object?["ms_per_step"] as? Double ?? 0, 0)
        let missing = try Harness.aetrain(["bench", "--data", "embedded", "--init", out.appendingPathComponent("nowhere").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertEqual(missing.errorLines.count, 1, missing.stderr)
    }

    func testBadKernelOptions() throws {
        for (args, message) in [(["--kernels", "fast"], "--kernels"), (["--sparse-below", "2"], "--sparse-below"),
                                (["--overlap", "maybe"], "--overlap")] {
            let r = try Harness.aetrain(["train", "--iterations", "2"] + args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
            XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        }
        let combined = try Harness.aetrain(["bench", "--sweep", "--init", "/tmp"])
        XCTAssertNotEqual(combined.status, 0)
        XCTAssertTrue(combined.stderr.contains("--init"), combined.stderr)
        let bench = try Harness.aetrain(["bench", "--sparsity", "--densities", "0"])
        XCTAssertNotEqual(bench.status, 0)
        XCTAssertTrue(bench.stderr.contains("--densities"), bench.stderr)
    }
}
