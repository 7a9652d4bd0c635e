import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

/// A subcommand that runs on every rank with the job's communicator.
protocol RankCommand: ParsableCommand {
    func run(comm: MPICommunicator) throws
}

struct AETrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aetrain",
        abstract: "Train the exercise sheet's sparse autoencoder on faces, data-parallel over MPI.",
        discussion: """
            Run alone for one process, or under mpirun for many: `mpirun -n 4 aetrain train --data faces.npy`.
            With no subcommand, `aetrain` is `aetrain train`.
            """,
        subcommands: [Train.self, PrepareLFW.self, PCACommand.self, Compare.self, Report.self, Bench.self],
        defaultSubcommand: Train.self)
}

/// MPI starts before argument parsing so that only rank 0 prints a usage error, once.
@main
enum Entry {
    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)
        let comm: MPICommunicator
        do { comm = try MPICommunicator() } catch {
            fputs("error: \(error)\n", stderr)
            exit(1)
        }
        var code: Int32 = 0
        do {
            var command = try AETrain.parseAsRoot()
            if let rankCommand = command as? RankCommand {
                try rankCommand.run(comm: comm)
            } else if comm.isRoot {
                try command.run()  // `aetrain help ...`: prints help
            }
        } catch let error as UserError {
            if comm.isRoot { fputs("error: \(error.message)\n", stderr) }
            code = 1
        } catch {
            // Help goes to stdout in full; a usage error is one line, as every error.
            code = AETrain.exitCode(for: error).rawValue
            if comm.isRoot {
                if code == 0 {
                    let message = AETrain.fullMessage(for: error)
                    if !message.isEmpty { print(message) }
                } else {
                    let message = AETrain.message(for: error).split(separator: "\n").joined(separator: " ")
                    fputs("error: \(message) (aetrain help lists the commands and flags)\n", stderr)
                }
            }
        }
        comm.finalize()
        exit(code)
    }
}
