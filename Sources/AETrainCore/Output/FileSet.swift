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

    /// Writes `files` (each a final path and how to write the whole file at the temporary path
    /// it is given) as one set in place, among other files: each is staged whole and durable
    /// under its temporary name (`DurableFile.stage`), then all are swapped in (`swap`). A
    /// failure while staging (a full disk) leaves every final path as it was.
    public static func write(_ files: [(url: URL, producer: (String) throws -> Void)]) throws {
        var staged: [(staged: URL, final: URL)] = []
        do {
            for file in files { staged.append((try DurableFile.stage(for: file.url, producer: file.producer), file.url)) }
            try swap(staged)
        } catch {
            for file in staged { unlink(file.staged.path) }
            throw error
        }
    }

    /// Puts files that are complete and durable under temporary names (`staged`) in place
    /// (`final`, in one directory or several) as a group, for sets that share their directory
    /// with other files (a run's final files beside its checkpoints) or span directories
    /// (encode's codes and reconstruction), where no single rename can swap them:
    ///
    ///  1. every `final` that exists is renamed aside, `.NAME.replaced-PID`;
    ///  2. every staged file is renamed to its `final`;
    ///  3. the set-aside files are removed.
    ///
    /// So no new file appears before every old one is gone: at any instant a reader sees the
    /// old set, part of the old set (during step 1), part of the new one (during step 2) or the
    /// new set, never an old file beside a new one. The partial states last as long as a few
    /// renames; a process killed in them leaves the rest under the temporary names, which the
    /// next run removes. A failed rename puts back what was moved (staged files return to
    /// their temporary names) and throws.
    public static func swap(_ files: [(staged: URL, final: URL)]) throws {
        var asides: [(aside: URL, final: URL)] = [], placed: [(staged: URL, final: URL)] = []
        func undo() {
            for p in placed.reversed() { _ = rename(p.final.path, p.staged.path) }
            for a in asides.reversed() { _ = rename(a.aside.path, a.final.path) }
        }
        for file in files {
            var info = stat()
            guard lstat(file.final.path, &info) == 0 else { continue }
            let aside = file.final.deletingLastPathComponent().appendingPathComponent(".\(file.final.lastPathComponent).replaced-\(getpid())")
            guard rename(file.final.path, aside.path) == 0 else { let e = failure(file.final, "rename"); undo(); throw e }
            asides.append((aside, file.final))
        }
        for file in files {
            guard rename(file.staged.path, file.final.path) == 0 else { let e = failure(file.final, "rename"); undo(); throw e }
            placed.append(file)
        }
        var synced: Set<String> = []
        for file in files where synced.insert(file.final.deletingLastPathComponent().path).inserted { DurableFile.syncDirectory(of: file.final) }
        for a in asides { unlink(a.aside.path) }
    }

    /// NAME for a file set aside by `swap` (`.NAME.replaced-PID`) or staged by `DurableFile`
    /// (`.NAME.tmp-PID`); nil for any other name.
    public static func leftoverTarget(_ name: String) -> String? {
        for marker in [".tmp-", ".replaced-"] {
            guard name.hasPrefix("."), let found = name.range(of: marker, options: .backwards) else { continue }
            let pid = name[found.upperBound...]
            guard !pid.isEmpty, pid.allSatisfy({ $0.isASCII && $0.isNumber }), found.lowerBound > name.index(after: name.startIndex) else { continue }
            return String(name[name.index(after: name.startIndex)..<found.lowerBound])
        }
        return nil
    }

    /// Removes what a killed `write`/`swap` left beside `url` (its `.NAME.tmp-PID` and
    /// `.NAME.replaced-PID`), unless the process PID is still alive (it may be writing them).
    public static func removeLeftovers(beside url: URL) {
        let parent = url.deletingLastPathComponent()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] {
            guard leftoverTarget(entry) == url.lastPathComponent, let pid = entry.split(separator: "-").last.flatMap({ Int32($0) }),
                  pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink(parent.appendingPathComponent(entry).path)
        }
    }

    private static func failure(_ url: URL, _ what: String) -> UserError {
        UserError("cannot write \(url.path): \(what): \(String(cString: strerror(errno)))")
    }
}
