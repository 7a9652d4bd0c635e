import Foundation

/// V, W, b and a as plain arrays, for reading `--init` directories and for tests.
public struct ModelWeights: Equatable {
    public var shape: ModelShape
    public var V: [Float]   // (d, h)
    public var W: [Float]   // (h, d)
    public var b: [Float]   // (h)
    public var a: [Float]   // (d)

    public static let fileNames = ["V.npy", "W.npy", "b.npy", "a.npy"]

    /// Reads V.npy, W.npy, b.npy and a.npy from `directory`, checking that they fit together.
    public static func load(from directory: URL) throws -> ModelWeights {
        func read(_ name: String) throws -> (shape: [Int], values: [Float]) {
            let reader = try NPYReader(path: directory.appendingPathComponent(name).path)
            let values = try reader.readAll()
            for (i, v) in values.enumerated() where !v.isFinite {
                throw UserError("\(directory.path)/\(name): element \(i) is not finite")
            }
            return (reader.header.shape, values)
        }
        let (vs, V) = try read("V.npy"), (ws, W) = try read("W.npy")
        let (bs, b) = try read("b.npy"), (as_, a) = try read("a.npy")
        guard vs.count == 2 else { throw UserError("\(directory.path)/V.npy: expected a (d, h) matrix, got shape \(vs)") }
        let shape = ModelShape(d: vs[0], h: vs[1])
        guard ws == [shape.h, shape.d], bs == [shape.h], as_ == [shape.d] else {
            throw UserError("\(directory.path): shapes do not fit together: V \(vs), W \(ws), b \(bs), a \(as_) (expected V (d, h), W (h, d), b (h), a (d))")
        }
        return ModelWeights(shape: shape, V: V, W: W, b: b, a: a)
    }

    public init(shape: ModelShape, V: [Float], W: [Float], b: [Float], a: [Float]) {
        self.shape = shape; self.V = V; self.W = W; self.b = b; self.a = a
    }

    public init(_ store: ParameterStore<Float>) {
        let l = store.layout
        self.init(shape: l.shape, V: Array(store.tensor(l.V)), W: Array(store.tensor(l.W)),
                  b: Array(store.tensor(l.b)), a: Array(store.tensor(l.a)))
    }

    func check(against expected: ModelShape) throws {
        guard shape == expected else {
            throw UserError("⟨init⟩ weights are for d = \(shape.d) pixels and h = \(shape.h) hidden units, but this run has d = \(expected.d) and h = \(expected.h)")
        }
    }

    func copy(into store: ParameterStore<Float>) {
        let l = store.layout
        for (range, values) in [(l.V, V), (l.W, W), (l.b, b), (l.a, a)] {
            for (i, v) in values.enumerated() { store.params[range.lowerBound + i] = v }
        }
    }

    /// The four `.npy` files: V.npy (d, h), W.npy (h, d), b.npy (h), a.npy (d).
    public var arrays: [(name: String, shape: [Int], values: [Float])] {
        let d = shape.d, h = shape.h
        return [("V.npy", [d, h], V), ("W.npy", [h, d], W), ("b.npy", [h], b), ("a.npy", [d], a)]
    }
}
