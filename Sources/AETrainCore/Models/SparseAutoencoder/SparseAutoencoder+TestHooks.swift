/// Test-only: `--debug-perturb-rank` drifts θ (`AdamTrainedModel.perturb`).
extension SparseAutoencoder: TestDrift {}
