/// `--eval-data`: another dataset evaluated at every log line with the training statistics.
enum EvalData {
    /// An N×D `.npy` takes the training data's image shape once its D matches (a one-line
    /// error otherwise); other data keeps its own, and a D that differs is refused when it
    /// loads (`DatasetShard.load` with the training normalization).
    static func imageShape(of source: DataSource, training: DatasetShard) throws -> ImageShape? {
        guard case .npy(let path) = source else { return nil }
        let header = try NPYReader(path: path).header
        guard header.shape.count == 2 else { return nil }
        guard header.shape[1] == training.d else {
            throw UserError("⟨eval-data⟩ \(path): examples have D = \(header.shape[1]) values, but the training data has D = \(training.d)")
        }
        return training.info.imageShape
    }
}
