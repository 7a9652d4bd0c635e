import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

/// A subcommand that runs on every rank with the job's communicator.
protocol RankCommand: ParsableCommand {
    func run(comm: MPICommunicator) throws
    /// Flags whose names differ from the core's setting names (`Setting`), by setting name.
    static var flagNames: [String: String] { get }
}

extension RankCommand {
    static var flagNames: [String: String] { [:] }
}

/// The flag for a setting named in a core message (`⟨learning-rate⟩` → `--lr`).
enum FlagNames {
    static let shared = ["epsilon": "--eps", "learning-rate": "--lr", "adam-epsilon": "--adam-eps"]

    static func flag(_ setting: String, in command: ParsableCommand.Type) -> String {
        (command as? RankCommand.Type)?.flagNames[setting] ?? shared[setting] ?? "--" + setting
    }
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
        var commandType: ParsableCommand.Type = Train.self
        do {
            var command = try AETrain.parseAsRoot()
            commandType = type(of: command)
            if let rankCommand = command as? RankCommand {
                try rankCommand.run(comm: comm)
            } else if comm.isRoot {
                try command.run()  // `aetrain help ...`: prints help
            }
        } catch let error as UserError {
            if comm.isRoot { fputs("error: \(error.rendered { FlagNames.flag($0, in: commandType) })\n", stderr) }
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

/// Runs a check of the core inside `validate()`: its `UserError` becomes a usage error
/// (exit 64) that names the flag.
func validating(_ command: ParsableCommand.Type, _ body: () throws -> Void) throws {
    do { try body() } catch let error as UserError {
        throw ValidationError(error.rendered { FlagNames.flag($0, in: command) })
    }
}
