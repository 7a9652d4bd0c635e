import Foundation

/// PCA under the run engine: a one-shot model (one iteration: the covariance reduced across
/// ranks, then LAPACK's eigen-decomposition), with no checkpoints. It logs the residual
/// variance of the first k components (rec: the mean squared error of projecting onto them)
/// and the fraction they explain.
public final class PCAModel: TrainableModel {
    public let shard: DatasetShard
    public let components: Int
    let comm: Communicator
    public private(set) var result: PrincipalComponents?

    public var shape: ModelShape { ModelShape(d: shard.d, h: components) }
    public let columns: [LogColumn] = [.rec, .ev, .comp]
    public var banner: String { "PCA, k = \(components)" }
    public var checkpoints: Bool { false }

    public init(shard: DatasetShard, components: Int, comm: Communicator) throws {
        guard components >= 1, components <= shard.d else {
            throw UserError("⟨hidden⟩ must be between 1 and d = \(shard.d), got \(components)")
        }
        let d = shard.d
        _ = try Sizes.product([d, d, MemoryLayout<Double>.stride], naming: "the \(d)×\(d) covariance of d = \(d) pixels")
        var need = MemoryEstimate()
        need.add(bytes: shard.bytes)
        need.add(Double.self, 2, d, d)                                // the covariance, then its scaled copy
        need.add(Double.self, 256, d); need.add(Double.self, components, d)  // row chunks; the components
        try MemoryBudget.check(need, for: "the \(d)×\(d) covariance of d = \(d) pixels (and this rank's data)", comm: comm)
        _ = try Sizes.count([d, d], naming: "the \(d)×\(d) covariance, reduced across ranks in one call,")
        self.shard = shard; self.components = components; self.comm = comm
    }

    private var seconds = 0.0

    public func iterate(_ iteration: Int, stop: Bool) throws -> Iteration {
        let start = Date()
        let pca = try PrincipalComponents.compute(shard, components: components, comm: comm)
        result = pca
        seconds = Date().timeIntervalSince(start)
        let residual = pca.eigenvalues[components...].reduce(0, +)
        var record = LogRecord(iteration: iteration, rec: residual, loss: residual)
        record.explainedVariance = pca.totalVariance > 0 ? 1 - residual / pca.totalVariance : nil
        return Iteration(record: record, stopRequested: false)
    }

    public func closeWindow(_ record: inout LogRecord) { record.computeSeconds = seconds }

    /// FNV-1a over the eigenvalues' bit patterns, a word at a time.
    public func checksum() -> UInt64 { (result?.eigenvalues ?? []).reduce(FNV1a.offset) { ($0 ^ $1.bitPattern) &* FNV1a.prime } }
    public var parametersAreFinite: Bool { result?.eigenvalues.allSatisfy(\.isFinite) ?? false }
    public func checkpointState() throws -> ModelState { ModelState(sections: []) }
    public func restore(_ checkpoint: Checkpoint, file: String) throws {}

    /// The projections of this rank's examples `rows` onto the k components.
    public func codes(ofRows rows: Range<Int>) -> [Float] {
        guard let result else { return [] }
        let d = shard.d
        var codes: [Float] = []
        codes.reserveCapacity(rows.count * components)
        for row in rows {
            let x = (row - shard.rows.lowerBound) * d
            for u in result.components { codes.append(Float((0..<d).reduce(0.0) { $0 + Double(shard.values[x + $1]) * u[$1] })) }
        }
        return codes
    }

    /// components.npy (k, d), explained_variance.npy (k eigenvalues), and the spectrum's
    /// first 20 lines.
    public func outputs() throws -> ModelOutputs {
        guard let pca = result else { return ModelOutputs() }
        let d = shard.d, k = components
        var out = ModelOutputs()
        out.arrays = [("components.npy", [k, d], pca.components.flatMap { $0.map(Float.init) }),
                      ("explained_variance.npy", [k], pca.eigenvalues.prefix(k).map(Float.init))]
        out.filters = pca.components.prefix(64).map { $0.map(Float.init) }
        func pad(_ columns: [String]) -> String {
            ([columns[0].leftPadded(to: 7, with: " ")] + columns.dropFirst().map { $0.leftPadded(to: 8, with: " ") }).joined(separator: " ")
        }
        out.lines = [String(format: "total variance %.2f", pca.totalVariance), pad(["comp", "eigval", "ratio", "cumul"])]
        var cumulative = 0.0
        for i in 0..<min(k, 20) {
            cumulative += pca.explainedRatio(i)
            out.lines.append(pad([String(i), String(format: "%.3f", pca.eigenvalues[i]), String(format: "%.4f", pca.explainedRatio(i)),
                                  String(format: "%.4f", cumulative)]))
        }
        return out
    }
}
