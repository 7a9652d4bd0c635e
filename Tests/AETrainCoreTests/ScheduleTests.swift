import AETrainCore
import XCTest

/// `--lr-warmup`, `--lr-decay` and `--lambda-warmup` at their boundaries, and their checks.
final class ScheduleTests: XCTestCase {
    func testWarmupRisesLinearlyToOne() {
        var s = ScheduleSettings()
        s.lrWarmup = 4
        XCTAssertEqual((0..<6).map { s.learningRateFactor(at: $0, of: 100) }, [0.25, 0.5, 0.75, 1, 1, 1])
        s.lrWarmup = 1
        XCTAssertEqual(s.learningRateFactor(at: 0, of: 100), 1)
    }

    func testDecayFallsOverTheLastFraction() {
        var s = ScheduleSettings()
        s.lrDecay = 0.25   // 100 iterations: the last 25, 96 … 99 at 4/25 … 1/25
        XCTAssertEqual(s.decayIterations(of: 100), 25)
        XCTAssertEqual(s.learningRateFactor(at: 74, of: 100), 1)
        XCTAssertEqual(s.learningRateFactor(at: 75, of: 100), 1)
        XCTAssertEqual(s.learningRateFactor(at: 76, of: 100), 24.0 / 25)
        XCTAssertEqual(s.learningRateFactor(at: 99, of: 100), 1.0 / 25)
        s.lrDecay = 1
        XCTAssertEqual(s.learningRateFactor(at: 0, of: 10), 1)
        XCTAssertEqual(s.learningRateFactor(at: 9, of: 10), 0.1)
        s.lrDecay = 0
        XCTAssertEqual(s.learningRateFactor(at: 99, of: 100), 1)
        // Warmup and decay overlapping multiply.
        s.lrWarmup = 10; s.lrDecay = 1
        XCTAssertEqual(s.learningRateFactor(at: 4, of: 10), 0.5 * 0.6, accuracy: 1e-15)
    }

    func testLambdaWarmup() {
        var s = ScheduleSettings()
        XCTAssertEqual(s.lambdaFactor(at: 0), 1)
        s.lambdaWarmup = 3
        XCTAssertEqual((0..<4).map { s.lambdaFactor(at: $0) }, [1.0 / 3, 2.0 / 3, 1, 1])
    }

    /// Bad values are one-line usage errors; the sheet's values are no schedule at all (nil),
    /// so its config.json and checkpoints keep their bytes; other models refuse the flags.
    func testValidationAndTheSheetsBytes() throws {
        func merged(_ edit: (inout SettingOverrides) -> Void, model: ModelKind = .sparseAutoencoder) throws -> TrainSettings {
            var o = SettingOverrides()
            edit(&o)
            return try TrainSettings.merged(o, over: nil, model: model)
        }
        func refused(_ edit: (inout SettingOverrides) -> Void, _ message: String, model: ModelKind = .sparseAutoencoder) {
            XCTAssertThrowsError(try merged(edit, model: model)) { XCTAssertEqual(($0 as? UserError)?.message, message) }
        }
        refused({ $0.lrWarmup = -1 }, "⟨lr-warmup⟩ must be ≥ 0 iterations, got -1")
        refused({ $0.lambdaWarmup = -2; $0.lambda = 1 }, "⟨lambda-warmup⟩ must be ≥ 0 iterations, got -2")
        refused({ $0.lrDecay = 1.5 }, "⟨lr-decay⟩ is the fraction of the iterations the learning rate decays over, in [0, 1]; got 1.5")
        refused({ $0.lrDecay = .nan }, "⟨lr-decay⟩ is the fraction of the iterations the learning rate decays over, in [0, 1]; got nan")
        refused({ $0.lrDecay = -0.1 }, "⟨lr-decay⟩ is the fraction of the iterations the learning rate decays over, in [0, 1]; got -0.1")
        refused({ $0.lambdaWarmup = 10 }, "⟨lambda-warmup⟩ warms λ up, but λ is 0: give ⟨lambda⟩ too")
        refused({ $0.lrWarmup = 10 }, "⟨lr-warmup⟩ does not apply to the tied-linear model", model: ModelKind(rawValue: "tied-linear")!)
        refused({ $0.decoderNorm = .unit }, "⟨decoder-norm⟩ does not apply to the sparse-coding model", model: ModelKind(rawValue: "sparse-coding")!)

        let sheet = try merged { $0.lrWarmup = 0; $0.lrDecay = 0; $0.decoderNorm = ArchitectureSettings.DecoderNorm.none }
        XCTAssertNil(sheet.schedule)
        XCTAssertNil(sheet.architecture)
        XCTAssertEqual(sheet, try merged { _ in })
        let unit = try merged { $0.decoderNorm = .unit; $0.lrWarmup = 5 }
        XCTAssertTrue(unit.unitNormDecoder)
        XCTAssertEqual(unit.schedule?.lrWarmup, 5)
        // A checkpoint's schedule is part of the trajectory.
        XCTAssertEqual(unit.trajectoryDifference(from: sheet), "⟨decoder-norm⟩ unit here, none in the checkpoint")
    }
}
