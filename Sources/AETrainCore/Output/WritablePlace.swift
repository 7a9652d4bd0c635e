import Foundation

/// Checks made before a command writes anything: that a file or a directory it will write
/// can be created where the user pointed. The test is a probe — a file created (`O_EXCL`) and
/// removed at once in the directory that would hold the output — because permission bits do not
/// tell (root passes them; a read-only mount, `/proc` or `/sys` refuse anyway). A refused
/// command thus leaves the file system as it found it.
public enum WritablePlace {
    /// `url` is to be a directory of outputs (created if missing, with its parents).
    public static func checkDirectory(_ url: URL, setting: String) throws {
        let path = url.standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw UserError("⟨\(setting)⟩ \(url.relativePath): exists and is not a directory") }
            if let why = probe(path) { throw UserError("⟨\(setting)⟩ \(url.relativePath): cannot write into it: \(why)") }
            return
        }
        let ancestor = nearestExisting(url)
        guard FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw UserError("⟨\(setting)⟩ \(url.relativePath): cannot create it: \(ancestor.relativePath) is not a directory")
        }
        if let why = probe(ancestor.path) {
            throw UserError("⟨\(setting)⟩ \(url.relativePath): cannot create it in \(ancestor.relativePath): \(why)")
        }
    }

    /// `url` is to be a file, written whole: its directory must exist and take a new file, and
    /// `url`, if it exists, must be a regular file.
    /// - inside: a directory the command creates before it writes `url` (train's `--out`): a
    ///   file there needs only that directory to be creatable.
    public static func checkFile(_ url: URL, setting: String, inside created: URL? = nil) throws {
        let path = url.standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            guard !isDirectory.boolValue, attributes?[.type] as? FileAttributeType == .typeRegular else {
                throw UserError("⟨\(setting)⟩ \(url.relativePath): exists and is not a regular file")
            }
        }
        let parent = url.standardizedFileURL.deletingLastPathComponent()
        if let created, !FileManager.default.fileExists(atPath: parent.path) {
            let root = created.standardizedFileURL.path
            if parent.path == root || parent.path.hasPrefix(root + "/") { return try checkDirectory(parent, setting: setting) }
        }
        guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw UserError("⟨\(setting)⟩ \(url.relativePath): the directory \(parent.relativePath) does not exist")
        }
        if let why = probe(parent.path) { throw UserError("⟨\(setting)⟩ \(url.relativePath): cannot write into \(parent.relativePath): \(why)") }
    }

    /// The closest of `url` and its ancestors that exists.
    static func nearestExisting(_ url: URL) -> URL {
        var current = url.standardizedFileURL
        while !FileManager.default.fileExists(atPath: current.path), current.path != "/" {
            current = current.deletingLastPathComponent()
        }
        return current
    }

    /// nil when a new file can be created in `directory` (and is removed again); else why not.
    static func probe(_ directory: String) -> String? {
        let probe = (directory as NSString).appendingPathComponent(".aetrain-probe-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        close(fd)
        unlink(probe)
        return nil
    }
}
