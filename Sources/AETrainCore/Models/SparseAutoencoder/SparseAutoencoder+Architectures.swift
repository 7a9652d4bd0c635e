/// What topk, batchtopk and jumprelu add to the model beyond the step: the inference rule
/// (held-out evaluation, activations.npy, the feature density), the thresholds in the final
/// files, and the state in the checkpoint (dead-latent counters, batchtopk's θ).
extension ArchitectureSettings.Activation {
    /// The inference rule, as model.safetensors's metadata records it.
    public var inferenceRule: String {
        switch self {
        case .relu: "z = relu(x V + b), x_hat = z W + a"
        case .topk: "z = TopK_k(relu(x V + b)) per example, ties to the lower unit, x_hat = z W + a"
        case .batchtopk: "z = relu(p) * (relu(p) > threshold), p = x V + b, x_hat = z W + a"
        case .jumprelu: "z = p * (p > threshold), p = x V + b, x_hat = z W + a"
        }
    }
}

extension SparseAutoencoder {
    /// z of `rows` rows x (rows, d) under the architecture's inference rule, into z (rows, h):
    ///   topk       TopK_k(relu(π))
    ///   batchtopk  relu(π)·1[relu(π) > θ]
    ///   jumprelu   π·H(π − θ)
    /// Returns the number of nonzero codes. `rows` ≤ the batch size.
    @discardableResult
    func inferCodes(z: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int) -> Float {
        guard let a = settings.modernArchitecture, rows > 0 else { return 0 }
        let (d, h) = (shape.d, shape.h)
        Objective.encoderProduct(pre: evalPre, x: x, V: store.V, b: store.b, mr: rows, d: d, h: h)
        switch a.activation {
        case .topk:
            z.update(repeating: 0, count: rows * h)
            var n = 0
            for i in 0..<rows {
                let kept = TopK.select(evalPre + i * h, h: h, k: a.k, allowed: nil, heapUnits: evalHeapUnits, heapValues: evalHeapValues,
                                       units: evalHeapUnits, values: evalHeapValues)
                // The kept units and values overwrite the heap in ascending order: copy them out first.
                for e in 0..<kept { z[i * h + Int(evalHeapUnits[e])] = evalHeapValues[e] }
                n += kept
            }
            return Float(n)
        case .batchtopk:
            return Float(BatchTopKSelection<Float>.infer(z: z, pre: evalPre, threshold: gradient.batchTopK?.threshold ?? 0, rows: rows, h: h))
        case .jumprelu, .relu:
            evalColumnSums.update(repeating: 0, count: h)
            return JumpReLU.apply(z: z, pre: evalPre, columnSums: evalColumnSums, theta: store.parameter("threshold"), rows: rows, h: h)
        }
    }

    /// The thresholds the final files carry: batchtopk's θ for every latent, jumprelu's θ; nil otherwise.
    func thresholds() -> [Float]? {
        switch settings.activation {
        case .batchtopk: [Float](repeating: Float(gradient.batchTopK?.threshold ?? 0), count: shape.h)
        case .jumprelu: store.values("threshold")
        default: nil
        }
    }

    // MARK: Checkpoint

    static let countersSection = "latents.steps_since_fired"
    static let batchThresholdSection = "batchtopk.threshold"

    public func checkpointState() throws -> ModelState {
        var state = store.checkpointState(sampler: sampler)
        if let latents = gradient.latents { state.sections.append((Self.countersSection, .i32(latents.counters))) }
        if let selection = gradient.batchTopK { state.sections.append((Self.batchThresholdSection, .f64([selection.threshold]))) }
        return state
    }

    /// θ, the moments and the sampler; the new architectures' counters and threshold (a
    /// checkpoint without them, from before they were recorded, starts them afresh).
    public func restore(_ checkpoint: Checkpoint, file: String) throws {
        try store.restore(checkpoint, sampler: &sampler, file: file)
        let steps = checkpoint.header.iteration
        if let latents = gradient.latents, checkpoint.values.contains(where: { $0.name == Self.countersSection }) {
            latents.restore(counters: try checkpoint.i32(Self.countersSection, count: shape.h, path: file), steps: steps)
        }
        if let selection = gradient.batchTopK, checkpoint.values.contains(where: { $0.name == Self.batchThresholdSection }) {
            selection.threshold = try checkpoint.f64(Self.batchThresholdSection, count: 1, path: file)[0]
        }
    }
}
