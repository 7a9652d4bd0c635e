import Foundation

/// What a trained sparse autoencoder applies to its pre-activations when it encodes (`encode`,
/// and the SAELens export, which must give the same codes), read from the finished run:
/// config.json's `settings.architecture` (nil: relu, the sheet) and, for batchtopk and
/// jumprelu, threshold.npy (float32, (h); batchtopk's one θ repeated h times).
///
///     π (m, h) = x_n V + b   the pre-activations of m examples      z (m, h)  the codes
///
///     relu       z = relu(π)
///     topk       z = TopK_k(relu(π)) per example: the k largest entries of each row,
///                ties to the lower unit index, the rest 0
///     batchtopk  z = relu(π)·1[relu(π) > θ]      θ the running threshold of training
///     jumprelu   z = π·H(π − θ_j)                θ (h) a trained parameter
public enum InferenceRule: Equatable, Sendable {
    case relu
    case topk(k: Int)
    case batchtopk(threshold: Float)
    case jumprelu(thresholds: [Float])

    public static let thresholdFile = "threshold.npy"

    public var activation: ArchitectureSettings.Activation {
        switch self {
        case .relu: .relu
        case .topk: .topk
        case .batchtopk: .batchtopk
        case .jumprelu: .jumprelu
        }
    }

    /// batchtopk and jumprelu: the run has threshold.npy.
    public var hasThresholds: Bool {
        switch self {
        case .relu, .topk: false
        case .batchtopk, .jumprelu: true
        }
    }

    /// The threshold of every unit (h values), for the rules that have one.
    public func thresholds(h: Int) -> [Float]? {
        switch self {
        case .relu, .topk: nil
        case .batchtopk(let theta): [Float](repeating: theta, count: h)
        case .jumprelu(let thetas): thetas
        }
    }

    /// The rule of the run in `directory` (whose config.json says `architecture`) for a model
    /// of h units. A damaged or hand-edited run is refused with one line: k outside 1…h, a
    /// threshold.npy missing, not float32, not of shape (h), not finite, or (batchtopk) not
    /// one value.
    public static func recorded(in directory: URL, architecture: ArchitectureSettings?, h: Int) throws -> InferenceRule {
        let run = directory.relativePath
        guard let architecture else { return .relu }
        switch architecture.activation {
        case .relu:
            return .relu
        case .topk:
            guard (1...h).contains(architecture.k) else {
                throw UserError("\(run)/config.json: topk with k = \(architecture.k), but the model has h = \(h) units (k must be in 1…\(h))")
            }
            return .topk(k: architecture.k)
        case .batchtopk, .jumprelu:
            let name = architecture.activation.rawValue
            let path = directory.appendingPathComponent(thresholdFile).relativePath
            guard FileManager.default.fileExists(atPath: path) else {
                throw UserError("\(run): config.json names a \(name) model but \(thresholdFile) is missing (the run has not finished, or its files were removed)")
            }
            let reader = try NPYReader(path: path)
            guard reader.header.element == .float32, reader.header.shape == [h] else {
                throw UserError("\(path): expected float32 of shape (\(h),) (one threshold per unit), got \(reader.header.element) of shape (\(reader.header.shape.map(String.init).joined(separator: ", ")),)")
            }
            let values = try reader.readAll()
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw UserError("\(path): element \(i) is not finite")
            }
            guard architecture.activation == .batchtopk else { return .jumprelu(thresholds: values) }
            guard let theta = values.first else { return .batchtopk(threshold: 0) }  // h ≥ 1: never
            guard let i = values.firstIndex(where: { $0 != theta }) else { return .batchtopk(threshold: theta) }
            throw UserError("\(path): a batchtopk model has one threshold, repeated for every unit; element \(i) differs from element 0")
        }
    }

    /// z (m, h) of m examples x (m, d), normalized as the run's were. relu runs the training
    /// step's own kernel (`Objective.encoderForward`), so that its codes keep their bits; the
    /// other rules compute π = x V + b and `apply` themselves. `columnSums` (h) is scratch.
    /// `products`: fp32 BLAS, or bf16 with V packed (`encode --precision bf16`).
    func encode(z: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, V: UnsafePointer<Float>, b: UnsafePointer<Float>,
                columnSums: UnsafeMutablePointer<Float>, m: Int, d: Int, h: Int, products: Products<Float> = .blas) {
        guard self != .relu else {
            _ = Objective.encoderForward(z: z, columnSums: columnSums, x: x, V: V, b: b, mr: m, d: d, h: h, products: products)
            return
        }
        guard m > 0 else { return }
        // As the step computes π: the product, then the bias added.
        products.gemm(.encoder, transA: false, transB: false, m: m, n: h, k: d, alpha: 1, a: x, lda: d, b: V, ldb: h, beta: 0, c: z, ldc: h)
        for i in 0..<m {
            let row = z + i * h
            for j in 0..<h { row[j] += b[j] }
        }
        apply(z, rows: m, h: h)
    }

    /// z (m, h) from π (m, h), in place.
    public func apply(_ p: UnsafeMutablePointer<Float>, rows m: Int, h: Int) {
        switch self {
        case .relu:
            for i in 0..<(m * h) { p[i] = max(p[i], 0) }
        case .topk(let k):
            for i in 0..<m { Self.keepTopK(p + i * h, h: h, k: k) }
        case .batchtopk(let theta):
            for i in 0..<(m * h) {
                let r = max(p[i], 0)
                p[i] = r > theta ? r : 0
            }
        case .jumprelu(let theta):
            for i in 0..<m {
                let row = p + i * h
                for j in 0..<h where !(row[j] > theta[j]) { row[j] = 0 }
            }
        }
    }

    /// One row: relu, then the k largest entries kept (ties to the lower index), the rest 0.
    /// t, the k-th largest value, is found by selection on a copy; every entry above t is
    /// kept, and of the entries equal to t the first ones, up to k in all.
    static func keepTopK(_ row: UnsafeMutablePointer<Float>, h: Int, k: Int) {
        for j in 0..<h { row[j] = max(row[j], 0) }
        guard k < h else { return }
        var copy = Array(UnsafeBufferPointer(start: row, count: h))
        let t = kthLargest(&copy, k)
        var above = 0
        for j in 0..<h where row[j] > t { above += 1 }
        var ties = k - above
        for j in 0..<h {
            if row[j] > t { continue }
            if row[j] == t, ties > 0 { ties -= 1; continue }
            row[j] = 0
        }
    }

    /// The k-th largest of `values` (1 ≤ k ≤ count), by quickselect (reorders `values`).
    static func kthLargest(_ values: inout [Float], _ k: Int) -> Float {
        var lo = 0, hi = values.count - 1
        let target = k - 1  // index in descending order
        while lo < hi {
            let pivot = values[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while values[i] > pivot { i += 1 }
                while values[j] < pivot { j -= 1 }
                if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return values[target] }
        }
        return values[target]
    }
}

extension InferenceRule {
    /// The rule of a run read from its newest checkpoint (⟨checkpoint⟩ latest): jumprelu's θ
    /// from the checkpoint's parameters (`layout`'s `threshold`), batchtopk's from its section
    /// (0 in a checkpoint from before it was recorded, as training starts it).
    static func checkpointed(architecture: ArchitectureSettings?, checkpoint: Checkpoint, parameters: [Float],
                             layout: ParameterLayout, file: URL) throws -> InferenceRule {
        guard let architecture else { return .relu }
        switch architecture.activation {
        case .relu: return .relu
        case .topk: return .topk(k: architecture.k)
        case .jumprelu:
            guard let range = layout.tensors.first(where: { $0.name == "threshold" })?.range else { return .relu }  // never: the layout has θ
            return .jumprelu(thresholds: Array(parameters[range]))
        case .batchtopk:
            let section = SparseAutoencoder.batchThresholdSection
            guard checkpoint.values.contains(where: { $0.name == section }) else { return .batchtopk(threshold: 0) }
            let theta = try checkpoint.f64(section, count: 1, path: file.path)[0]
            guard theta.isFinite else { throw UserError("\(file.path): batchtopk's threshold is not finite") }
            return .batchtopk(threshold: Float(theta))
        }
    }
}
