/// Test-only: `--debug-perturb-rank` drifts the dictionary's first entry.
extension SparseCodingModel: TestDrift {
    func perturb() { coding.W[0] += 1e-3 }
}
