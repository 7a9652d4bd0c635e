import AETrainCore
import Foundation
import XCTest

/// The benchmarks in one process, without the command line: their reports' JSON keys (which
/// users and the end-to-end tests read) and text tables.
final class BenchmarkTests: XCTestCase {
    func smallPlan() -> BenchPlan {
        var plan = BenchPlan()
        plan.data = .synthetic(SyntheticSpec(examples: 200, shape: ImageShape(height: 10, width: 10)), seed: 0)
        plan.hidden = 16
        plan.batchSize = 20
        plan.steps = 10
        plan.warmup = 1
        plan.threads = 1
        return plan
    }

    func object(_ report: BenchReport?) throws -> [String: Any] {
        let json = try XCTUnwrap(report).json()
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    func testStepReportOneShapeIsFlat() throws {
        let report = try Benchmark.run(smallPlan(), comm: SingleProcess())
        let o = try object(report)
        XCTAssertEqual(Set(o.keys), ["batch_size", "hidden", "ms_per_step", "gemm_floor_ms", "ratio", "optimizer_ms",
                                     "exposed_communication_ms", "ranks", "threads_per_rank", "examples", "d", "lambda",
                                     "steps", "peak_rss_mb_per_rank", "seconds_to_first_step", "load_average", "deterministic", "overlap", "gradient_sum", "precision", "products"])
        XCTAssertEqual(o["deterministic"] as? Bool, false)
        XCTAssertEqual(o["precision"] as? String, "fp32")
        XCTAssertEqual(o["gradient_sum"] as? String, "none", "one process sums nothing")
        XCTAssertEqual(o["overlap"] as? Bool, false, "one process: auto does not overlap")
        XCTAssertEqual(o["d"] as? Int, 100)
        XCTAssertEqual(o["hidden"] as? Int, 16)
        XCTAssertGreaterThan(o["ms_per_step"] as? Double ?? 0, 0)
        let text = try XCTUnwrap(report).text()
        XCTAssertEqual(text.count, 6)
        XCTAssertTrue(text[0].hasPrefix("aetrain bench: 200 examples of 10x10 (d = 100"), text[0])
    }

    /// `--deterministic` times the deterministic step and says so.
    func testDeterministicStepReport() throws {
        var plan = smallPlan()
        plan.deterministic = true
        let report = try Benchmark.run(plan, comm: SingleProcess())
        XCTAssertEqual(try object(report)["deterministic"] as? Bool, true)
        let text = try XCTUnwrap(report).text()
        XCTAssertTrue(text[0].contains("deterministic step"), text[0])
    }

    func testSparsityReport() throws {
        var plan = smallPlan()
        plan.kind = .sparsity(densities: [0.1, 0.5])
        let o = try object(try Benchmark.run(plan, comm: SingleProcess()))
        XCTAssertEqual(Set(o.keys), ["ranks", "batch_size", "hidden", "d", "gemm_floor_ms", "results"])
        let rows = o["results"] as? [[String: Double]] ?? []
        XCTAssertEqual(rows.map { $0["density"] ?? 0 }, [0.1, 0.5])
        XCTAssertEqual(Set(rows.first?.keys.map { $0 } ?? []), ["density", "measured_density", "dense_ms", "sparse_ms"])
    }

    func testAllreduceReport() throws {
        var plan = BenchPlan()
        plan.kind = .allreduce
        let report = try Benchmark.run(plan, comm: SingleProcess())
        let o = try object(report)
        XCTAssertEqual(Set(o.keys), ["ranks", "alpha_ms", "ms_per_mb", "points", "fastest_alpha_ms", "fastest_ms_per_mb", "fastest_points"])
        XCTAssertEqual((o["points"] as? [[Double]])?.map { $0.first ?? 0 }, AllreduceBenchmark.sizes.map { Double($0 * 4) })
        let median = try XCTUnwrap(o["points"] as? [[Double]]), fastest = try XCTUnwrap(o["fastest_points"] as? [[Double]])
        XCTAssertEqual(fastest.map { $0.first ?? 0 }, AllreduceBenchmark.sizes.map { Double($0 * 4) })
        for (m, f) in zip(median, fastest) { XCTAssertLessThanOrEqual(f[1], m[1], "the fastest call is no slower than the median") }
        XCTAssertEqual(try XCTUnwrap(report).text().count, 3 + AllreduceBenchmark.sizes.count)
    }
}
