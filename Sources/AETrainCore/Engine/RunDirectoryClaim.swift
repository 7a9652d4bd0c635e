import Foundation

/// A run directory belongs to one run. Rank 0 claims it before writing anything:
///
///  - an exclusive `flock` on `R/.lock`, held for the life of the process, so that a second
///    run into R stops at once with the holder's pid instead of mixing its files with this
///    run's;
///  - a new run into a directory that already holds a run's files is refused unless
///    `overwrite` is set, which first removes those files (only the ones aetrain writes);
///  - a resumed run continues the run that is there.
public final class RunDirectoryClaim {
    public let url: URL
    private let lock: Int32

    /// The names aetrain writes into a run directory (any model); `checkpoints` is a folder.
    /// TensorBoard's event files (`TensorBoardWriter.prefix`) count too.
    public static let runFiles: Set<String> = [
        "config.json", "metrics.jsonl", "checkpoints", "dataset.png", "filters.png", "activations.npy", "mean.npy",
        "feature_density.svg", "feature_density.npy",
        "V.npy", "W.npy", "b.npy", "a.npy", "model.safetensors", "dictionary.npy", "subspace_cosines.npy",
        "components.npy", "explained_variance.npy",
    ]

    /// Creates the directory if needed, takes its lock, and checks (or clears) what it holds.
    public init(_ url: URL, resuming: Bool, overwrite: Bool) throws {
        try Self.prepare(url)
        self.url = url
        let path = url.appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw UserError("⟨out⟩ \(url.relativePath): cannot create its lock file: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw UserError("⟨out⟩ \(url.relativePath) is in use by another aetrain run (pid \(holder.isEmpty ? "?" : holder)); "
                            + "wait for it to end or choose another directory")
        }
        lock = fd
        // The holder's pid, for a second run's message: written once the claim is granted, so
        // that a refused run leaves the lock file as it found it.
        func granted() {
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = pwrite(fd, pid, pid.count, 0)
            Self.removeLeftovers(url)
        }
        guard !resuming else { granted(); return }
        let events = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasPrefix(TensorBoardWriter.prefix) }
        let held = (Self.runFiles.filter { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) } + events).sorted()
        guard !held.isEmpty else { granted(); return }
        // From here on `deinit` closes the lock when a throw gives up the claim.
        guard overwrite else {
            throw UserError("⟨out⟩ \(url.relativePath) holds a run (\(Self.describe(url, held))); continue it with ⟨resume⟩ "
                            + "\(url.relativePath) or start over with ⟨overwrite⟩")
        }
        for name in held {
            do { try Self.remove(url.appendingPathComponent(name)) } catch {
                throw UserError("⟨overwrite⟩: cannot remove \(url.appendingPathComponent(name).relativePath): \(error.localizedDescription)")
            }
        }
        granted()
    }

    deinit { close(lock) }

    /// Removes the temporary files a killed run left behind (`DurableFile`'s `.NAME.tmp-PID` and
    /// `FileSet.swap`'s `.NAME.replaced-PID`, for NAME one of aetrain's files, a checkpoint or an
    /// event file), in the directory and its
    /// `checkpoints/`. Called only once the claim holds: its lock is exclusive, so no live
    /// writer owns them; a refused run changes nothing.
    static func removeLeftovers(_ url: URL) {
        for folder in [url, url.appendingPathComponent("checkpoints")] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                guard let target = temporaryTarget(name),
                      runFiles.contains(target) || target.hasPrefix("step-") || target.hasPrefix(TensorBoardWriter.prefix) else { continue }
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }

    /// NAME for a temporary file named `.NAME.tmp-PID` or a set-aside one `.NAME.replaced-PID`
    /// (`FileSet.swap`); nil for any other name.
    static func temporaryTarget(_ name: String) -> String? { FileSet.leftoverTarget(name) }

    /// Removes one of aetrain's files; of the checkpoints folder, only the checkpoints (and
    /// their temporary files), and the folder itself if nothing else is left in it.
    static func remove(_ url: URL) throws {
        guard url.lastPathComponent == "checkpoints" else { return try FileManager.default.removeItem(at: url) }
        for name in try FileManager.default.contentsOfDirectory(atPath: url.path)
        where name.hasPrefix("step-") || name.hasPrefix(".step-") {
            try FileManager.default.removeItem(at: url.appendingPathComponent(name))
        }
        if try FileManager.default.contentsOfDirectory(atPath: url.path).isEmpty { try FileManager.default.removeItem(at: url) }
    }

    /// What the run in `url` is, from its config.json, or the files it holds.
    static func describe(_ url: URL, _ held: [String]) -> String {
        if let data = try? Data(contentsOf: url.appendingPathComponent("config.json")),
           let config = try? JSONDecoder().decode(RunConfig.self, from: data) {
            return "\((config.model ?? .sparseAutoencoder).rawValue), \(config.settings.iterations) iterations, started \(config.started)"
        }
        return held.prefix(4).joined(separator: ", ") + (held.count > 4 ? ", …" : "")
    }

    /// Creates the directory if needed and checks that it is writable.
    static func prepare(_ url: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw UserError("⟨out⟩ \(url.relativePath): exists and is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw UserError("⟨out⟩ \(url.relativePath): cannot create the directory: \(error.localizedDescription)")
            }
        }
        guard FileManager.default.isWritableFile(atPath: url.path) else {
            throw UserError("⟨out⟩ \(url.relativePath): the directory is not writable")
        }
    }
}

/// A reader's hold on a run directory (`encode`, `export`): a shared `flock` on `R/.lock`, so
/// that the run is not being trained while it is read (training holds the lock exclusively,
/// and would write new weights over the ones being read), held for the reader's life.
public final class RunReadLock {
    private let fd: Int32

    /// nil for a directory without a lock file (a run from before locks, or copied without it).
    /// - purpose: "encode", "export", for the message.
    public static func take(_ url: URL, for purpose: String) throws -> RunReadLock? {
        let path = url.appendingPathComponent(".lock").path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            close(fd)
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            throw UserError("\(url.relativePath) is being trained (pid \(holder.isEmpty ? "?" : holder)): its files are still the previous "
                            + "session's; \(purpose) it once the run has ended or stopped")
        }
        return RunReadLock(fd: fd)
    }

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// Outputs never overwrite inputs: an output path may not be an input, lie inside an input
/// directory (an LFW tree), or be a directory that holds an input.
public enum InputOutputPaths {
    /// The real path (symlinks resolved, `..` removed) of `path`, or of its nearest existing
    /// ancestor with the rest appended.
    static func real(_ url: URL) -> String {
        url.standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// nil when `output` and `input` are apart; else why not.
    public static func conflict(output: URL, input: URL) -> String? {
        let o = real(output), i = real(input)
        if o == i { return "is the input \(input.relativePath)" }
        if i.hasPrefix(o.hasSuffix("/") ? o : o + "/") { return "holds the input \(input.relativePath)" }
        if o.hasPrefix(i.hasSuffix("/") ? i : i + "/") { return "lies inside the input \(input.relativePath)" }
        return nil
    }

    /// Throws when `output` (named by `setting`) would overwrite a file of the run directories
    /// `runs` (what compare and report read); a new file inside a run directory is fine.
    public static func check(output: URL, setting: String, runs: [URL]) throws {
        let files = runs.flatMap { run in
            RunDirectoryClaim.runFiles.map { run.appendingPathComponent($0) }.filter { FileManager.default.fileExists(atPath: $0.path) }
        }
        try check(output: output, setting: setting, inputs: files + runs.filter { real(output) == real($0) })
    }

    /// Throws when `output` (named by `setting`) would overwrite one of `inputs`.
    public static func check(output: URL, setting: String, inputs: [URL]) throws {
        for input in inputs {
            if let why = conflict(output: output, input: input) {
                throw UserError("⟨\(setting)⟩ \(output.relativePath) \(why); write the outputs elsewhere")
            }
        }
    }
}
