import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct PCACommand: JobCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "Principal components of the standardized data (covariance reduced across ranks, LAPACK eigen-decomposition).",
        discussion: "Writes components.npy (k, d), explained_variance.npy (k), activations.npy, mean.npy, config.json and metrics.jsonl to --out, and filters.png when the data has an image shape.")
    static let flagNames = ["hidden": "--components"]

    @OptionGroup var data: DataFlags
    @Option(help: "Components to keep (default 64).") var components: Int?
    @Option(help: "sheet (default: x − the per-dimension mean, divided by the std of all centred entries) or center (x − the mean); PCA centres the data, so none and unit-norm are refused.")
    var normalize: Normalization.Kind?
    @Option(help: "Output directory.") var out: String = "aetrain-pca"
    @Flag(help: "Write into a directory that holds another run's files, removing them first (otherwise refused).")
    var overwrite = false
    @OptionGroup var job: JobOptions
    @Flag(help: "Print nothing but errors.") var quiet = false

    func validate() throws {
        try validating(Self.self) {
            try plan().validate()
            _ = try plan().newRunSettings()
        }
    }

    func plan() -> RunPlan {
        var plan = RunPlan()
        plan.model = .pca
        plan.overrides.hidden = components
        plan.overrides.normalize = normalize
        plan.data = data.plan
        plan.output.directory = out
        plan.output.overwrite = overwrite
        plan.output.quiet = quiet
        plan.output.progress = .never
        plan.output.commandLine = CommandLine.arguments
        plan.execution.peerTimeout = job.peerTimeout
        return plan
    }

    func run(comm: Communicator) throws {
        try TrainingRun(plan: plan(), comm: comm).run()
    }
}
