import AETrainCore
import AETrainMPI
import ArgumentParser

/// Flags every multi-rank command takes: they concern the job, not what it computes.
struct JobOptions: ParsableArguments {
    /// The watchdog's timeout is at most this (11.6 days), which keeps its nanosecond arithmetic
    /// in range; a longer wait is no timeout at all.
    static let maxPeerTimeout = 1e6

    @Option(help: "Seconds a rank waits in a collective before it declares a peer dead and ends the job.")
    var peerTimeout: Double = MPICommunicator.defaultPeerTimeout

    @Option(help: ArgumentHelp("Memory each rank may use, e.g. 8G, 512M or bytes (default: this node's memory / ranks on this node).",
                               valueName: "size"))
    var maxMemory: String?

    /// `--max-memory` in bytes (nil: the node's memory shared by its ranks).
    var maxMemoryBytes: Int? { maxMemory.flatMap(MemoryBudget.parse) }

    func validate() throws {
        if let maxMemory, MemoryBudget.parse(maxMemory) == nil {
            throw ValidationError("--max-memory must be a positive size such as 8G, 512M or a number of bytes, got '\(maxMemory)'")
        }
        guard peerTimeout.isFinite, peerTimeout > 0 else { throw ValidationError("--peer-timeout must be positive, got \(peerTimeout)") }
        guard peerTimeout <= Self.maxPeerTimeout else {
            throw ValidationError("--peer-timeout must be at most \(Int(Self.maxPeerTimeout)) s, got \(peerTimeout)")
        }
    }
}

/// A `RankCommand` whose job-wide flags come from the shared `JobOptions` group.
protocol JobCommand: RankCommand {
    var job: JobOptions { get }
}

extension JobCommand {
    var peerTimeout: Double { job.peerTimeout }
}

/// `--checkpoint` of encode and export: which weights of the run to read instead of its final
/// files.
enum CheckpointChoice: String, ExpressibleByArgument, CaseIterable {
    /// The newest checkpoint that reads back whole, also while the run is being trained.
    case latest

    static let help: ArgumentHelp = "latest: read the run's newest complete checkpoint instead of its final files; works while the run is being trained."
}
