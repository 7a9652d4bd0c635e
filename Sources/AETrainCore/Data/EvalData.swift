/// `--eval-data`: another dataset evaluated at every log line with the training statistics.
enum EvalData {
    /// An N×D `.npy` takes the training data's image shape once its D matches (a one-line
    /// error otherwise); other data keeps its own, and a D that differs is refused when it
    /// loads (`DatasetShard.load` with the training normalization).
    static func imageShape(of source: DataSource, training: DatasetShard) throws -> ImageShape? {
        guard let file = try source.openFile(), file.shape.count == 2 else { return nil }
        guard file.shape[1] == training.d else {
            throw UserError("⟨eval-data⟩ \(source): examples have D = \(file.shape[1]) values, but the training data has D = \(training.d)")
        }
        return training.info.imageShape
    }
}
