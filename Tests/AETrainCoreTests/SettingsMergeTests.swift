import AETrainCore
import XCTest

/// The one place where a run's settings are decided: each model's defaults, the derivation of
/// ε and η from λ, flags over a checkpoint's settings, and settings a model does not read.
final class SettingsMergeTests: XCTestCase {
    func merged(_ model: ModelKind, base: TrainSettings? = nil, defaultHidden: Int? = nil,
                _ set: (inout SettingOverrides) -> Void = { _ in }) throws -> TrainSettings {
        var o = SettingOverrides()
        set(&o)
        return try TrainSettings.merged(o, over: base, model: model, defaultHidden: defaultHidden)
    }

    func testSparseAutoencoderDefaultsAreTheSheets() throws {
        let s = try merged(.sparseAutoencoder)
        XCTAssertEqual(s.hidden, 400)
        XCTAssertEqual(s.objective, ObjectiveSettings(lambda: 0, epsilon: 0, eta: 0))
        XCTAssertEqual(s.adam, AdamSettings())
        XCTAssertEqual(s.adam.learningRate, 1e-4)
        XCTAssertEqual([s.batchSize, s.iterations, s.logEvery], [100, 10001, 1000])
        XCTAssertNil(s.sparseCoding)
    }

    func testEpsilonAndEtaFollowLambdaUnlessGiven() throws {
        let derived = try merged(.sparseAutoencoder) { $0.lambda = 2 }
        XCTAssertEqual(derived.objective.epsilon, 0.02, accuracy: 1e-15)
        XCTAssertEqual(derived.objective.eta, 2)
        let given = try merged(.sparseAutoencoder) { $0.lambda = 2; $0.eta = 0.5 }
        XCTAssertEqual(given.objective.eta, 0.5)
        XCTAssertEqual(given.objective.epsilon, 0.02, accuracy: 1e-15)
    }

    func testEachModelRunsOnItsOwnDefaults() throws {
        let sc = try merged(.sparseCoding)
        XCTAssertEqual(sc.objective.lambda, 1)
        XCTAssertEqual(sc.objective.eta, 0.01)
        XCTAssertEqual([sc.hidden, sc.iterations, sc.logEvery], [400, 30, 1])
        XCTAssertEqual(sc.sparseCoding, SparseCodingSettings(sourceUpdate: .fista, fistaSteps: 100))
        // λ given: η keeps sparse coding's own default (it does not follow λ as the sheet's autoencoder's does).
        XCTAssertEqual(try merged(.sparseCoding) { $0.lambda = 3 }.objective.eta, 0.01)

        let tied = try merged(.tiedLinear)
        XCTAssertEqual([tied.hidden, tied.iterations, tied.batchSize], [64, 5001, 100])
        XCTAssertEqual(tied.adam.learningRate, 1e-3)

        let pca = try merged(.pca)
        XCTAssertEqual([pca.hidden, pca.iterations], [64, 1])
        for model in ModelKind.allCases { XCTAssertNoThrow(try model.definition.defaults.validate(for: model), model.rawValue) }
    }

    /// Each model's own checks run after the common ones, and only for that model.
    func testModelChecksApplyToTheirModelOnly() throws {
        var s = TrainSettings()
        s.normalize = Normalization.Kind.none
        XCTAssertNoThrow(try s.validate(for: .sparseAutoencoder))
        XCTAssertThrowsError(try s.validate(for: .pca)) {
            XCTAssertEqual(($0 as? UserError)?.message, "pca centres the data: ⟨normalize⟩ must be sheet or center, got none")
        }
        s.normalize = nil
        s.objective.eta = 0.01
        s.sparseCoding = SparseCodingSettings(fistaSteps: 0)
        XCTAssertNoThrow(try s.validate(for: .tiedLinear))
        XCTAssertThrowsError(try s.validate(for: .sparseCoding)) {
            XCTAssertEqual(($0 as? UserError)?.message, "⟨fista-steps⟩ must be positive, got 0")
        }
    }

    func testSettingsAModelDoesNotReadAreRefused() throws {
        XCTAssertThrowsError(try merged(.tiedLinear) { $0.lambda = 1 }) { error in
            XCTAssertEqual((error as? UserError)?.message, "⟨lambda⟩ does not apply to the tied-linear model")
            XCTAssertEqual((error as? UserError)?.rendered { "--" + $0 }, "--lambda does not apply to the tied-linear model")
        }
        XCTAssertThrowsError(try merged(.sparseAutoencoder) { $0.fistaSteps = 3 })
        XCTAssertThrowsError(try merged(.pca) { $0.iterations = 3 })
        XCTAssertNoThrow(try merged(.sparseCoding) { $0.sourceUpdate = .relaxed; $0.fistaSteps = 7 })
        XCTAssertEqual(try merged(.sparseCoding) { $0.fistaSteps = 7 }.sparseCoding?.fistaSteps, 7)
    }

    func testFlagsOverACheckpointKeepItsDerivedTerms() throws {
        // A checkpoint of a λ = 1 run whose ε was set by hand.
        var base = try merged(.sparseAutoencoder) { $0.lambda = 1; $0.epsilon = 0.05 }
        base.iterations = 3000
        let extended = try merged(.sparseAutoencoder, base: base) { $0.iterations = 5000 }
        XCTAssertEqual(extended.objective, base.objective, "ε and η stay as recorded")
        XCTAssertEqual(extended.iterations, 5000)
        XCTAssertNil(extended.trajectoryDifference(from: base))
        // λ given again, as it was: the checkpoint's ε stays, so the run continues.
        let same = try merged(.sparseAutoencoder, base: base) { $0.lambda = 1 }
        XCTAssertEqual(same.objective, base.objective)
        XCTAssertNil(same.trajectoryDifference(from: base))
        // Another λ: ε and η follow it, and the trajectory differs from the checkpoint's.
        let changed = try merged(.sparseAutoencoder, base: base) { $0.lambda = 2 }
        XCTAssertEqual(changed.objective.eta, 2)
        XCTAssertEqual(changed.trajectoryDifference(from: base), "⟨lambda⟩ 2.0 here, 1.0 in the checkpoint")
    }

    func testInitWeightsSetTheDefaultHiddenOnly() throws {
        XCTAssertEqual(try merged(.sparseAutoencoder, defaultHidden: 7).hidden, 7)
        XCTAssertEqual(try merged(.sparseAutoencoder, defaultHidden: 7) { $0.hidden = 9 }.hidden, 9)
        var base = TrainSettings()
        base.hidden = 5
        XCTAssertEqual(try merged(.sparseAutoencoder, base: base, defaultHidden: 7).hidden, 5, "a checkpoint's h wins")
    }

    func testInvalidSettingsNameTheSetting() throws {
        XCTAssertThrowsError(try merged(.sparseAutoencoder) { $0.batchSize = 0 }) {
            XCTAssertEqual(($0 as? UserError)?.message, "⟨batch-size⟩ must be positive, got 0")
        }
        XCTAssertThrowsError(try merged(.sparseCoding) { $0.eta = 0 }) {
            XCTAssertTrue((($0 as? UserError)?.message ?? "").contains("⟨eta⟩ > 0"))
        }
        XCTAssertThrowsError(try merged(.sparseAutoencoder) { $0.learningRate = -1 }) {
            XCTAssertEqual(($0 as? UserError)?.description, "learning-rate must be positive, got -1.0")
        }
    }
}
