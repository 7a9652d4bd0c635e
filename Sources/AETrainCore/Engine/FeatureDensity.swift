import Foundation

/// How often each unit fires over the training examples at the end of a run: the SAE tools'
/// "feature density" (SAELens plots log10 of it). A unit fires on an example when its code
/// is nonzero — z_j > 0 for the autoencoder's ReLU codes, s_j ≠ 0 for sparse coding's.
///
/// Measured over every training example (the held-out ones excluded: their firing is in the
/// `eval_` terms), each rank its own rows, reduced. One pass of the encoder over the data.
public struct FeatureDensity: Equatable, Sendable {
    /// (h) on how many examples each unit fired.
    public var firing: [Double]
    /// The examples measured.
    public var examples: Int

    /// Added to a frequency before log10, as SAELens does: a unit that never fired sits at −10.
    public static let floor = 1e-10

    public init(firing: [Double], examples: Int) { self.firing = firing; self.examples = examples }

    /// (h) firing frequencies, in [0, 1].
    public var frequencies: [Double] { firing.map { $0 / Double(max(examples, 1)) } }
    /// (h) log10(frequency + 1e-10).
    public var log10Frequencies: [Double] { frequencies.map { log10($0 + Self.floor) } }
    public var deadUnits: Int { firing.filter { $0 == 0 }.count }

    /// Rows encoded at a time: bounds the codes buffer to chunk × h values.
    static let chunk = 256

    /// The density of `model`'s codes over the training examples of every rank's shard (collective).
    static func measure(_ model: TrainableModel, shard: DatasetShard, hidden h: Int, comm: Communicator) throws -> FeatureDensity {
        let heldOut = Set(shard.heldOutRows)
        var sums = [Double](repeating: 0, count: h + 1)  // firing counts, then examples
        var start = shard.rows.lowerBound
        while start < shard.rows.upperBound {
            let rows = start..<min(start + chunk, shard.rows.upperBound)
            let codes = model.codes(ofRows: rows)  // (rows.count, h)
            for (i, row) in rows.enumerated() where !heldOut.contains(row) {
                sums[h] += 1
                for j in 0..<h where codes[i * h + j] != 0 { sums[j] += 1 }
            }
            start = rows.upperBound
        }
        try comm.allreduceSum(&sums)
        return FeatureDensity(firing: Array(sums[0..<h]), examples: Int(sums[h]))
    }
}
