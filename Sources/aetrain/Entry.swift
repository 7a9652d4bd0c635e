import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

/// A subcommand that runs on every rank with the job's communicator.
protocol RankCommand: ParsableCommand {
    /// Seconds a rank may wait in a collective before the job ends (`--peer-timeout`).
    var peerTimeout: Double { get }
    func run(comm: Communicator) throws
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
        subcommands: [Train.self, PrepareLFW.self, PCACommand.self, Compare.self, Report.self, Bench.self, Encode.self, Export.self],
        defaultSubcommand: Train.self)
}

/// MPI starts before argument parsing so that only rank 0 prints a usage error, once. The
/// peer watchdog covers MPI's start-up, then every collective of the command with its
/// `--peer-timeout`, then MPI_Finalize: no command can wait forever for a stopped rank.
@main
enum Entry {
    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)
        let launch = LaunchCheck.current()
        let comm: MPICommunicator
        do { comm = try MPICommunicator() } catch {
            fputs("error: \(error)\n", stderr)
            exit(1)
        }
        if let problem = launch.problem(worldSize: comm.size) {
            if launch.isFirstTask { fputs("error: \(problem)\n", stderr) }
            do { try comm.finalize() } catch {}
            exit(1)
        }
        // A failed MPI call leaves the ranks unable to agree on anything: the rank that saw it
        // prints one line and ends; mpirun ends the others.
        func abandon(_ failure: Error) -> Never {
            fputs("error: \(failure)\n", stderr)
            comm.abandon(code: 1)
        }
        var code: Int32 = 0
        var commandType: ParsableCommand.Type = Train.self
        do {
            // Swift decodes arguments as UTF-8, repairing what is not: a path that is not
            // UTF-8 would silently become another path. Refuse it instead.
            for i in 1..<Int(CommandLine.argc) {
                guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) != nil else {
                    throw ValidationError("argument \(i) is not valid UTF-8; aetrain takes paths and values in UTF-8")
                }
            }
            var command = try AETrain.parseAsRoot()
            commandType = type(of: command)
            if let rankCommand = command as? RankCommand {
                comm.startWatchdog(timeout: rankCommand.peerTimeout)
                MemoryBudget.limit = (command as? JobCommand)?.job.maxMemoryBytes
                // The tests' frozen rank (`TestFreezeCommunicator`) when the environment asks for it.
                try rankCommand.run(comm: TestFreezeCommunicator.installed(around: comm))
            } else if comm.isRoot {
                try command.run()  // `aetrain help ...`: prints help
            }
        } catch let failure as CommunicationFailure {
            abandon(failure)
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
        do { try comm.finalize() } catch { abandon(error) }
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
