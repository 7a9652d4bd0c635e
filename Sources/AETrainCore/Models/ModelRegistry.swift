/// Every model aetrain knows, the one place that names them all. A model lives in its own
/// folder, `Models/<Name>/`, and joins by its definition's line here (see `ModelDefinition`).
public enum ModelRegistry {
    /// In the order `--model`'s help lists them.
    public static let all: [any ModelDefinition] = [
        SparseAutoencoderDefinition(),
        SparseCodingDefinition(),
        TiedLinearDefinition(),
        PCADefinition(),
    ]

    /// The sheet's sparse autoencoder: `train`'s model without `--model`, and the model of
    /// runs and checkpoints that did not record one.
    public static let standard = ModelKind.sparseAutoencoder
}
