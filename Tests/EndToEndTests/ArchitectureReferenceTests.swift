import AETrainCore
import Foundation
import XCTest

/// The Swift step (`DistributedStep`, double precision, dense and sparse kernels) against an
/// independent numpy implementation written from the formulas
/// (`Tests/Reference/sae_architectures.py`): rec, L0, AuxK and every gradient, for topk and
/// batchtopk with AuxK on dead latents, and jumprelu with its pseudo-derivatives and λ·L0.
final class ArchitectureReferenceTests: XCTestCase {
    let shape = ModelShape(d: 7, h: 16)
    let m = 11

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Reference/sae_architectures.py")
    }

    func testStepMatchesTheNumpyReference() throws {
        let dir = try Harness.temporaryDirectory("reference")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = (0..<shape.h).map { $0 % 3 == 0 }
        for activation in [ArchitectureSettings.Activation.topk, .batchtopk, .jumprelu] {
            var a = ArchitectureSettings(activation: activation)
            a.k = 3; a.auxK = 2; a.auxCoef = 0.25; a.deadSteps = 4; a.bandwidth = 0.3
            let lambda = activation == .jumprelu ? 0.2 : 0
            let layout = ParameterLayout(shape, threshold: activation == .jumprelu)
            var rng = Xoshiro256(seed: 11)
            let x = (0..<(m * shape.d)).map { _ in rng.normal() + 0.5 }
            var theta = (0..<layout.count).map { _ in 0.4 * rng.normal() }
            if activation == .jumprelu { for i in layout.tensors[4].range { theta[i] = 0.1 + 0.1 * rng.normal() } }
            func tensor(_ name: String) -> [Double] { Array(theta[layout.tensors.first { $0.name == name }!.range]) }
            var problem: [String: Any] = [
                "activation": activation.rawValue, "m": m, "d": shape.d, "h": shape.h, "k": a.k, "kAux": a.auxK ?? 0,
                "auxCoef": a.auxCoef, "bandwidth": a.bandwidth, "lambda": lambda, "dead": dead,
                "x": x, "V": tensor("V"), "W": tensor("W"), "b": tensor("b"), "a": tensor("a"),
            ]
            if activation == .jumprelu { problem["threshold"] = tensor("threshold") }
            let file = dir.appendingPathComponent("\(activation).json")
            try JSONSerialization.data(withJSONObject: problem).write(to: file)
            let r = try Harness.run("/usr/bin/env", ["python3", Self.script.path, file.path], timeout: 120)
            XCTAssertEqual(r.status, 0, r.stderr)
            let reference = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let grads = try XCTUnwrap(reference["grads"] as? [String: [Double]])
            for kernels in [KernelChoice.dense, .sparse] {
                let store = ParameterStore<Double>(layout: layout, reducedSlots: ArchitectureTerm.reducedSlots(for: a))
                for (i, v) in theta.enumerated() { store.params[i] = v }
                let step = DistributedStep(store: store, maxRows: m, settings: ObjectiveSettings(lambda: lambda, epsilon: 0, eta: 0),
                                           comm: SingleProcess(), options: StepOptions(kernels: kernels), architecture: a)
                step.latents?.restore(counters: dead.map { $0 ? 4 : 0 }, steps: 4)
                let terms = try x.withUnsafeBufferPointer { try step.lossAndGradient(x: $0.baseAddress!, mr: m, m: m) }
                let label = "\(activation) \(kernels)"
                XCTAssertEqual(terms.rec, try XCTUnwrap(reference["rec"] as? Double), accuracy: 1e-10, label)
                XCTAssertEqual(terms.l0, try XCTUnwrap(reference["l0"] as? Double), accuracy: 1e-12, label)
                XCTAssertEqual(terms.auxK, try XCTUnwrap(reference["auxk"] as? Double), accuracy: 1e-10, label)
                if activation != .jumprelu { XCTAssertGreaterThan(terms.auxK, 0, "\(label): AuxK is exercised") }
                for t in layout.tensors {
                    let expected = try XCTUnwrap(grads[t.name], "\(label): \(t.name)")
                    let scale = max(1, expected.map(abs).max() ?? 1)
                    let worst = zip(t.range, expected).map { abs(store.grads[$0.0] - $0.1) }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-10 * scale, "\(label): d\(t.name) differs from numpy's by \(worst)")
                }
            }
        }
    }
}
