import AETrainCore
import Foundation
import XCTest

/// Runs the built `aetrain` binary, alone or under `mpirun`, and captures what it printed.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error:") } }
}

enum Harness {
    /// The directory holding the built products (the test bundle sits beside `aetrain`).
    static var products: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static var aetrain: String { products.appendingPathComponent("aetrain").path }

    /// The embedded faces as shipped (raw pixels, (100, 25, 25) float32), beside the binary.
    static var embeddedFaces: String { products.appendingPathComponent("aetrain_AETrainCore.resources/lfw_faces_25x25.npy").path }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aetrain-e2e-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs `executable` with `arguments` (in `directory`, or this process's working directory,
    /// with `extra` added to the environment); fails the test if it has not ended after `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 300, environment extra: [String: String] = [:],
                    directory: URL? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        try runAll([Command(executable, arguments, environment: extra, directory: directory)], timeout: timeout,
                   file: file, line: line)[0]
    }

    /// One process for `runAll`.
    struct Command {
        var executable: String
        var arguments: [String]
        var environment: [String: String] = [:]
        var directory: URL? = nil
        init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil) {
            (self.executable, self.arguments, self.environment, self.directory) = (executable, arguments, environment, directory)
        }
    }

    /// Runs `commands` at the same time and returns what each printed, in order; fails the test
    /// for each that has not ended after `timeout` seconds. For independent launches whose time
    /// is mostly start-up waiting (mpirun's and MPI's), not computing.
    static func runAll(_ commands: [Command], timeout: Double = 300,
                       file: StaticString = #filePath, line: UInt = #line) throws -> [Run] {
        let dir = try temporaryDirectory("io")
        defer { try? FileManager.default.removeItem(at: dir) }
        var started: [(process: Process, out: URL, err: URL)] = []
        defer { for s in started where s.process.isRunning { s.process.terminate(); s.process.waitUntilExit() } }
        for (k, command) in commands.enumerated() {
            let out = dir.appendingPathComponent("stdout\(k)"), err = dir.appendingPathComponent("stderr\(k)")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command.executable)
            process.arguments = command.arguments
            process.environment = environment().merging(command.environment) { $1 }
            if let directory = command.directory { process.currentDirectoryURL = directory }
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            started.append((process, out, err))
        }
        let deadline = Date().addingTimeInterval(timeout)
        while started.contains(where: { $0.process.isRunning }) && Date() < deadline { usleep(20_000) }
        return zip(commands, started).map { command, s in
            if s.process.isRunning {
                s.process.terminate()
                s.process.waitUntilExit()
                XCTFail("\(command.executable) \(command.arguments.joined(separator: " ")) did not finish in \(timeout) s", file: file, line: line)
            }
            s.process.waitUntilExit()
            return Run(status: s.process.terminationStatus,
                       stdout: (try? String(contentsOf: s.out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: s.err, encoding: .utf8)) ?? "")
        }
    }

    /// `mpirun -n RANKS aetrain ARGS` for each of `argumentLists` (one process when RANKS is 1),
    /// all at the same time (`runAll`).
    static func launchAll(_ ranks: Int, _ argumentLists: [[String]], timeout: Double = 300,
                          file: StaticString = #filePath, line: UInt = #line) throws -> [Run] {
        try runAll(argumentLists.map { ranks == 1 ? Command(aetrain, $0) : try mpirunCommand(ranks, $0, file: file, line: line) },
                   timeout: timeout, file: file, line: line)
    }

    /// `aetrain ARGS` as one process.
    static func aetrain(_ arguments: [String], timeout: Double = 300, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        try run(aetrain, arguments, timeout: timeout, file: file, line: line)
    }

    /// `mpirun -n RANKS --oversubscribe aetrain ARGS`.
    static func mpirun(_ ranks: Int, _ arguments: [String], timeout: Double = 300, environment extra: [String: String] = [:],
                       file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        try runAll([mpirunCommand(ranks, arguments, environment: extra, file: file, line: line)], timeout: timeout,
                   file: file, line: line)[0]
    }

    /// The command line of `mpirun` above, for `runAll`.
    ///
    /// With no wait between mpirun's SIGTERM and SIGKILL to the ranks left when one exits
    /// nonzero (`odls_base_sigkill_timeout`, 1 s by default): aetrain's ranks agree on an error
    /// and all exit by themselves, so the wait only added a second to each refused command. No
    /// test signals this mpirun itself; the tests that stop a run signal its ranks. (Only here:
    /// the namespace cluster's and Slurm's mpirun keep the default.)
    static func mpirunCommand(_ ranks: Int, _ arguments: [String], environment extra: [String: String] = [:],
                              file: StaticString = #filePath, line: UInt = #line) throws -> Command {
        let mpirun = "/usr/bin/mpirun"
        guard FileManager.default.isExecutableFile(atPath: mpirun) else {
            XCTFail("mpirun is missing: install openmpi-bin (deploy/test.sh does)", file: file, line: line)
            throw UserError("no mpirun")
        }
        return Command(mpirun, ["-n", "\(ranks)", "--oversubscribe", "--mca", "odls_base_sigkill_timeout", "0", aetrain] + arguments,
                       environment: extra)
    }

    /// Runs Python with numpy (an independent reader and writer of .npy files).
    static func python(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let r = try run("/usr/bin/env", ["python3", "-c", script], timeout: 120, file: file, line: line)
        XCTAssertEqual(r.status, 0, "python failed: \(r.stderr)", file: file, line: line)
        return r
    }

    /// Largest relative Frobenius difference over V, W, b, a between two run directories.
    static func relativeDifference(_ a: URL, _ b: URL) throws -> Double {
        let x = try ModelWeights.load(from: a), y = try ModelWeights.load(from: b)
        var worst = 0.0
        for (p, q) in [(x.V, y.V), (x.W, y.W), (x.b, y.b), (x.a, y.a)] {
            var diff = 0.0, norm = 0.0
            for (u, v) in zip(p, q) { diff += Double(u - v) * Double(u - v); norm += Double(u) * Double(u) }
            worst = max(worst, (diff / max(norm, 1e-30)).squareRoot())
        }
        return worst
    }

    static func metrics(_ dir: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            guard let object = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
                throw UserError("metrics line is not an object: \($0)")
            }
            return object
        }
    }
}

/// A process started in the background, its output going to files.
final class Job {
    let process: Process
    let out: URL, err: URL, dir: URL
    var pid: Int32 { process.processIdentifier }

    init(process: Process, dir: URL) {
        self.process = process
        self.dir = dir
        out = dir.appendingPathComponent("stdout")
        err = dir.appendingPathComponent("stderr")
    }

    /// Waits until `file` exists (and is non-empty); fails after `timeout` seconds.
    func waitFor(file: URL, nonEmpty: Bool, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let size = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? Int, !nonEmpty || size > 0 { return }
            guard process.isRunning else { throw UserError("the job ended before \(file.lastPathComponent) appeared: \(String(describing: try? String(contentsOf: err, encoding: .utf8)))") }
            usleep(50_000)
        }
        process.terminate()
        throw UserError("\(file.path) did not appear within \(timeout) s")
    }

    /// Waits for the end (killing the process after `timeout` seconds) and returns what it printed.
    func wait(timeout: Double) -> Run {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate(); XCTFail("job did not end within \(timeout) s") }
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: dir) }
        return Run(status: process.terminationStatus,
                   stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

extension Harness {
    /// This process's environment, plus what OpenMPI needs to run as root (only when root).
    static func environment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        if getuid() == 0 {
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        return env
    }

    /// Starts `executable` in the background.
    static func start(_ executable: String, _ arguments: [String]) throws -> Job {
        let dir = try temporaryDirectory("job")
        let job = Job(process: Process(), dir: dir)
        FileManager.default.createFile(atPath: job.out.path, contents: nil)
        FileManager.default.createFile(atPath: job.err.path, contents: nil)
        job.process.executableURL = URL(fileURLWithPath: executable)
        job.process.arguments = arguments
        job.process.environment = environment()
        job.process.standardOutput = try FileHandle(forWritingTo: job.out)
        job.process.standardError = try FileHandle(forWritingTo: job.err)
        job.process.standardInput = FileHandle.nullDevice
        try job.process.run()
        return job
    }

    /// Process ids whose parent is `pid` (from /proc), in increasing order.
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }

    /// Process ids whose environment holds `name=value` (read from /proc): the processes of one
    /// job, however mpirun grouped them, when the test gave that job a unique marker.
    static func processes(withEnvironment name: String, _ value: String) -> [Int32] {
        let needle = Data("\(name)=\(value)\u{0}".utf8)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            pid != getpid() && (FileManager.default.contents(atPath: "/proc/\(pid)/environ")?.range(of: needle) != nil)
        }.sorted()
    }
}

/// The sheet's two runs on the embedded faces with 2 ranks, 1,001 iterations logged every 100:
/// `dense` (λ = 0) and `sparse` (λ = 1) in one root folder. Trained once per test process, by
/// the first test that asks, for the tests that only read them (`SheetBehaviourTests`,
/// `ReportTests`, `EncodeExportTests`); those write their own outputs beside the runs, never
/// into them. Removed when the test process exits.
enum SheetRuns {
    struct Runs {
        var root: URL
        var dense: URL { root.appendingPathComponent("dense") }
        var sparse: URL { root.appendingPathComponent("sparse") }
        /// What `train` printed, by run name.
        var stdout: [String: String]
    }

    static let lambdas = [("dense", "0"), ("sparse", "1")]
    static let iterations = 1001, logEvery = 100

    /// The runs, or why training them failed (then every test that reads them fails with it).
    static func runs(file: StaticString = #filePath, line: UInt = #line) throws -> Runs {
        switch trained {
        case .success(let runs): return runs
        case .failure(let error):
            XCTFail("the sheet's shared runs could not be trained: \(error)", file: file, line: line)
            throw error
        }
    }

    private static let trained: Result<Runs, Error> = Result {
        let root = try Harness.temporaryDirectory("sheet-runs")
        createdRoot = root.path
        atexit { if let root = SheetRuns.createdRoot { try? FileManager.default.removeItem(atPath: root) } }
        var stdout: [String: String] = [:]
        for (name, lambda) in lambdas {
            let r = try Harness.mpirun(2, ["train", "--out", root.appendingPathComponent(name).path, "--lambda", lambda,
                                           "--iterations", "\(iterations)", "--log-every", "\(logEvery)"])
            guard r.status == 0 else { throw UserError("\(name) (λ = \(lambda)): \(r.stderr)") }
            stdout[name] = r.stdout
        }
        return Runs(root: root, stdout: stdout)
    }

    private static var createdRoot: String?
}
