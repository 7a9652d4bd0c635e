import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

/// Shared by `compare` and `report`: the runs named on the command line.
struct RunList: ParsableArguments {
    @Argument(help: "Run directories (written by `aetrain train --out`).")
    var runs: [String]

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("name at least one run directory") }
    }

    /// Reads the runs and hands them to `body` on rank 0; errors stop every rank.
    func onRoot(_ comm: Communicator, _ body: ([RunSummary]) throws -> Void) throws {
        try comm.collectively {
            guard comm.isRoot else { return }
            try body(try runs.map(RunSummary.load))
        }
    }
}

struct Compare: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare runs: the sheet's sparsity plot, training curves and sparsity fractions.",
        discussion: """
            Writes to --out: sparsity.svg (all activations of the first 25 examples, sorted, one line per run), \
            curve-TERM.svg for rec, spa, ent, reg, loss, l0 and explained_variance (runs overlaid), and \
            sparsity.csv (fraction of activations ≤ 0, 1e-3, 1e-2, 1e-1 per run), also printed.
            """)

    @OptionGroup var list: RunList
    @OptionGroup var job: JobOptions
    @Option(help: "Output directory.") var out: String = "aetrain-compare"

    func run(comm: Communicator) throws {
        try list.onRoot(comm) { runs in
            try RunComparison.write(runs, to: URL(fileURLWithPath: out))
            print(RunComparison.sparsityTable(runs))
            print("wrote \(out)/sparsity.svg, sparsity.csv and curve-{\(RunComparison.curves.map(\.name).joined(separator: ","))}.svg")
        }
    }
}

struct Report: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML report about runs (images inlined).")

    @OptionGroup var list: RunList
    @OptionGroup var job: JobOptions
    @Option(help: "Output HTML file.") var out: String = "report.html"

    func run(comm: Communicator) throws {
        try list.onRoot(comm) { runs in
            try HTMLReport.write(runs, to: URL(fileURLWithPath: out))
            print("wrote \(out)")
        }
    }
}
