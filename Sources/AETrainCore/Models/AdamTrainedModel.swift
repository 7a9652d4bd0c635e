/// A model trained with Adam on sampled global batches (the sparse and the tied
/// autoencoder): its parameters, gradients and moments live in one `ParameterStore`, its
/// batches come from a `GlobalBatchSampler`, and what the engine needs of such a model beyond
/// its maths is written once, here.
public protocol AdamTrainedModel: TrainableModel {
    var store: ParameterStore<Float> { get }
    var sampler: GlobalBatchSampler { get set }
}

extension AdamTrainedModel {
    public func checksum() -> UInt64 { store.checksum() }
    public var parametersAreFinite: Bool { store.parametersAreFinite() }
    public func checkpointState() throws -> ModelState { store.checkpointState(sampler: sampler) }
    public func restore(_ checkpoint: Checkpoint, file: String) throws {
        try store.restore(checkpoint, sampler: &sampler, file: file)
    }
}

extension ParameterStore where T == Float {
    /// The state of a model trained with Adam on sampled batches: θ, both moments (float32,
    /// in layout order), the sampler's permutation and generator. Adam's step is the iteration.
    public func checkpointState(sampler: GlobalBatchSampler) -> ModelState {
        let (p, m, v) = state()
        return ModelState(sections: [("parameters", .f32(p)), ("moment1", .f32(m)), ("moment2", .f32(v)),
                                     ("permutation", .i32(sampler.permutation))],
                          samplerRNG: sampler.rng.state)
    }

    /// Restores what `checkpointState(sampler:)` saved.
    public func restore(_ checkpoint: Checkpoint, sampler: inout GlobalBatchSampler, file: String) throws {
        let n = layout.count
        try sampler.restore(from: checkpoint, file: file)
        restore(parameters: try checkpoint.f32("parameters", count: n, path: file),
                moment1: try checkpoint.f32("moment1", count: n, path: file),
                moment2: try checkpoint.f32("moment2", count: n, path: file), adamSteps: checkpoint.header.iteration)
    }
}
