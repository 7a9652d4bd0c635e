import Foundation
import XCTest

/// The sheet's two runs on the embedded faces with two ranks (`SheetRuns`): the dense model
/// (λ = 0) reconstructs much better, the sparse one (λ = 1) keeps its activations' L1 norm far
/// lower, as in the sheet's tables. The first 1,000 iterations show it: both orderings hold
/// from iteration 500 on, and their margins only widen with training (at 1,000 the dense rec
/// is two orders below the sparse one's third). The defaults themselves (10,001 iterations, a
/// line every 1,000) are `SettingsMergeTests`'.
final class SheetBehaviourTests: XCTestCase {
    func testDenseAndSparseRunsBehaveAsInTheSheet() throws {
        let runs = try SheetRuns.runs()
        var final: [String: [String: Double]] = [:]
        for (name, _) in SheetRuns.lambdas {
            print(runs.stdout[name] ?? "")
            let metrics = try Harness.metrics(runs.root.appendingPathComponent(name))
            XCTAssertEqual(metrics.map { $0["iteration"] as? Int ?? -1 },
                           Array(stride(from: 0, through: SheetRuns.iterations - 1, by: SheetRuns.logEvery)))
            let last = metrics.last ?? [:]
            final[name] = ["rec": last["rec"] as? Double ?? .nan, "spa": last["spa"] as? Double ?? .nan]
            let first = metrics.first?["rec"] as? Double ?? .nan
            XCTAssertLessThan(final[name]?["rec"] ?? .nan, first / 3, "rec falls in both runs")
        }
        let dense = final["dense"] ?? [:], sparse = final["sparse"] ?? [:]
        XCTAssertLessThan(dense["rec"] ?? .nan, (sparse["rec"] ?? .nan) / 3, "rec falls much further with λ = 0")
        XCTAssertLessThan(sparse["spa"] ?? .nan, (dense["spa"] ?? .nan) / 2, "spa stays far lower with λ = 1")
    }
}
