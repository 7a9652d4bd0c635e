import AETrainCore
import XCTest

/// The registry is the one list of models: each model's name, how runs record it, and what its
/// definition declares.
final class ModelRegistryTests: XCTestCase {
    func testEveryModelIsListedOnceUnderItsRecordedName() {
        XCTAssertEqual(ModelKind.allCases.map(\.rawValue), ["sparse-autoencoder", "sparse-coding", "tied-linear", "pca"])
        XCTAssertEqual(Set(ModelKind.allCases).count, ModelRegistry.all.count)
        for kind in ModelKind.allCases {
            XCTAssertEqual(kind.definition.kind, kind)
            XCTAssertEqual(ModelKind(rawValue: kind.rawValue), kind)
        }
        XCTAssertNil(ModelKind(rawValue: "bogus"))
        XCTAssertEqual(ModelRegistry.standard, .sparseAutoencoder)
    }

    /// config.json and checkpoints hold the bare name; an unknown one is refused as an enum's was.
    func testRecordedFormIsTheBareName() throws {
        struct Holder: Codable, Equatable { var model: ModelKind? }
        let data = try JSONEncoder().encode(Holder(model: .tiedLinear))
        XCTAssertEqual(String(decoding: data, as: UTF8.self), #"{"model":"tied-linear"}"#)
        XCTAssertEqual(try JSONDecoder().decode(Holder.self, from: data), Holder(model: .tiedLinear))
        XCTAssertNil(try JSONDecoder().decode(Holder.self, from: Data("{}".utf8)).model, "older runs: no model recorded")
        XCTAssertThrowsError(try JSONDecoder().decode(Holder.self, from: Data(#"{"model":"bogus"}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("Cannot initialize ModelKind from invalid String value bogus"), "\($0)")
        }
    }

    /// What each definition declares, as the engine reads it.
    func testDefinitionsDeclareWhatTheRunAsksOf() {
        let evaluates = ModelRegistry.all.filter(\.evaluatesHeldOut).map(\.kind)
        XCTAssertEqual(evaluates, [.sparseAutoencoder, .tiedLinear])
        XCTAssertEqual(ModelRegistry.all.filter(\.splitsTheBatch).map(\.kind), [.sparseAutoencoder, .tiedLinear])
        XCTAssertEqual(ModelRegistry.all.filter(\.startsFromWeights).map(\.kind), [.sparseAutoencoder])
        XCTAssertEqual(ModelRegistry.all.filter(\.isOnePass).map(\.kind), [.pca])
        XCTAssertEqual(ModelRegistry.all.filter(\.takesStepOptions).map(\.kind), [.sparseAutoencoder])
        for definition in ModelRegistry.all {
            XCTAssertTrue(definition.settings.contains(.hidden), "\(definition.kind.rawValue) reads h")
            XCTAssertNoThrow(try definition.defaults.validate(for: definition.kind), definition.kind.rawValue)
        }
    }

    /// compare's and report's legend: the run's name and the setting that tells its model's runs apart.
    func testLabels() {
        var s = TrainSettings()
        s.objective.lambda = 2
        s.hidden = 16
        XCTAssertEqual(ModelKind.sparseAutoencoder.definition.label(run: "a", settings: s), "a (λ = 2.0)")
        XCTAssertEqual(ModelKind.sparseCoding.definition.label(run: "a", settings: s), "a (sparse-coding, λ = 2.0)")
        XCTAssertEqual(ModelKind.tiedLinear.definition.label(run: "a", settings: s), "a (tied-linear, k = 16)")
        XCTAssertEqual(ModelKind.pca.definition.label(run: "a", settings: s), "a (PCA, k = 16)")
    }

    /// A model is built from its definition with what the engine resolved.
    func testMakeBuildsTheModel() throws {
        let shard = try DatasetShard.load(DataSource(argument: "synthetic:40,4,4", seed: 0), imageShape: nil, comm: SingleProcess())
        var settings = ModelKind.tiedLinear.definition.defaults
        settings.hidden = 3
        settings.batchSize = 10
        let model = try ModelKind.tiedLinear.definition.make(ModelContext(shard: shard, settings: settings, comm: SingleProcess()))
        XCTAssertTrue(model is TiedLinearModel)
        XCTAssertEqual(model.shape, ModelShape(d: 16, h: 3))
    }
}
