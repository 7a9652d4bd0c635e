import Foundation

/// Several files that appear in a directory together or not at all: written (each durably)
/// into a staging directory beside it, `.NAME.staging-PID`, then moved into place by
/// rename(2), which is atomic.
///
/// POSIX renames a directory only over an empty one. So a new or empty directory takes the
/// staged one in one rename; a non-empty one (a previous output the user asked to replace) is
/// first renamed aside, `.NAME.replaced-PID`, then the staged one takes its name, then the old
/// one is removed. Between the two renames the directory does not exist: a reader sees the old
/// set, nothing, or the new set, never a mix. A process killed in between leaves the old set
/// in `.NAME.replaced-PID`; a failure (a full disk) restores it and removes what was staged.
public enum FileSet {
    /// Writes `files` (name, bytes) as the whole content of `directory`, which must be absent,
    /// empty or hold only what may be replaced (the caller has checked).
    public static func install(_ files: [(name: String, data: Data)], as directory: URL) throws {
        let parent = directory.deletingLastPathComponent(), name = directory.lastPathComponent
        let staging = parent.appendingPathComponent(".\(name).staging-\(getpid())")
        let aside = parent.appendingPathComponent(".\(name).replaced-\(getpid())")
        removeLeftovers(of: directory)
        do {
            try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw UserError("cannot write \(directory.path): cannot create \(staging.path): \(error.localizedDescription)")
        }
        do {
            for file in files { try DurableFile.write(file.data, to: staging.appendingPathComponent(file.name)) }
            if rename(staging.path, directory.path) != 0 {
                guard errno == ENOTEMPTY || errno == EEXIST else { throw failure(directory, "rename") }
                guard rename(directory.path, aside.path) == 0 else { throw failure(directory, "rename") }
                guard rename(staging.path, directory.path) == 0 else {
                    let e = failure(directory, "rename")
                    _ = rename(aside.path, directory.path)
                    throw e
                }
                try? FileManager.default.removeItem(at: aside)
            }
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        let fd = open(parent.path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Removes the staging and set-aside directories of `directory` that a killed process left
    /// (`.NAME.staging-PID`, `.NAME.replaced-PID`) beside it.
    public static func removeLeftovers(of directory: URL) {
        let parent = directory.deletingLastPathComponent(), name = directory.lastPathComponent
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] {
            for kind in [".staging-", ".replaced-"] {
                let prefix = "." + name + kind
                guard entry.hasPrefix(prefix), let pid = Int(entry.dropFirst(prefix.count)), pid > 0 else { continue }
                try? FileManager.default.removeItem(at: parent.appendingPathComponent(entry))
            }
        }
    }

    private static func failure(_ url: URL, _ what: String) -> UserError {
        UserError("cannot write \(url.path): \(what): \(String(cString: strerror(errno)))")
    }
}
