/// Test-only: `--debug-perturb-rank` drifts W (`AdamTrainedModel.perturb`).
extension TiedLinearModel: TestDrift {}
