import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Export: JobCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case saelens }

    static let configuration = CommandConfiguration(
        abstract: "Export a trained sparse autoencoder for another tool (SAELens: cfg.json and sae_weights.safetensors).",
        discussion: """
            The run's normalization is folded into the weights: the exported SAE (apply_b_dec_to_input false, \
            normalize_activations none) takes raw inputs and returns raw reconstructions. \
            Architectures: relu → standard, topk → topk (with k), batchtopk → jumprelu with its threshold θ \
            for every latent (as SAELens saves BatchTopK SAEs), jumprelu → jumprelu with its thresholds. \
            A unit-norm run (a factor per example, which folds into no weight) is exported as trained with \
            normalize_activations constant_norm_rescale, SAELens's own x·√D/‖x‖. \
            Load it with sae_lens.SAE.load_from_disk(DIR).
            """)

    @Argument(help: "A sparse autoencoder's run directory.") var run: String
    @Option(help: "saelens.") var format: Format
    @Option(help: "Output directory: new, empty, or a previous export (replaced only with --overwrite).") var out: String
    @Flag(help: "Replace a previous export in --out (a directory holding other files is always refused).") var overwrite = false
    @Option(help: CheckpointChoice.help) var checkpoint: CheckpointChoice?
    @Option(help: "SAELens metadata model_name: the model whose activations the vectors are (default: null).") var modelName: String?
    @Option(help: "SAELens metadata hook_name: the hook point of those activations (default: null).") var hookName: String?
    @OptionGroup var job: JobOptions
    @Flag(help: "Print nothing but errors.") var quiet = false

    func run(comm: Communicator) throws {
        let files = try SAELensExport.write(run: run, to: out, overwrite: overwrite, fromCheckpoint: checkpoint == .latest,
                                             names: .init(modelName: modelName, hookName: hookName), comm: comm)
        if comm.isRoot, !quiet { print("wrote " + files.map(\.relativePath).joined(separator: " and ")) }
    }
}
