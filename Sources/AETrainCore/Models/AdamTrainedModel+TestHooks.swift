/// Test-only (`TestDrift`): the drift of a model trained with Adam, its first parameter.
/// Ranks that share θ hold one copy and cannot drift; there it does nothing (writing it would
/// race with the others' reads).
extension AdamTrainedModel {
    func perturb() { if store.sharing == nil { store.params[0] += 1e-3 } }
}
