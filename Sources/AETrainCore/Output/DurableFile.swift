import Foundation

/// Whole-file writes that survive a crash or power loss: temporary file, fsync, rename,
/// fsync of the directory. A failure (e.g. a full disk) removes the temporary file and leaves
/// any earlier file under the final name untouched. Every file aetrain writes goes through
/// here: bytes with `write(_:to:)`, files a C library writes by path (PNG) with
/// `write(to:producer:)`.
public enum DurableFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { tmp in try writeBytes(data, at: tmp, for: url) }
    }

    /// `producer` writes the whole file at the temporary path it is given; this makes it
    /// durable and renames it to `url`.
    public static func write(to url: URL, producer: (String) throws -> Void) throws {
        let tmp = try stage(for: url, producer: producer)
        guard rename(tmp.path, url.path) == 0 else {
            let e = failure(url, "rename")
            unlink(tmp.path)
            throw e
        }
        syncDirectory(of: url)
    }

    /// Writes the whole file under its temporary name (`.NAME.tmp-PID` beside `url`) and makes
    /// it durable, without renaming it: `FileSet.swap` puts several such files in place
    /// together. A failure removes the temporary file.
    public static func stage(for url: URL, producer: (String) throws -> Void) throws -> URL {
        let tmp = temporary(for: url)
        do {
            try producer(tmp.path)
            let fd = open(tmp.path, O_RDONLY)
            guard fd >= 0 else { throw failure(url, "open") }
            guard fsync(fd) == 0 else { let e = failure(url, "fsync"); close(fd); throw e }
            guard close(fd) == 0 else { throw failure(url, "close") }
        } catch {
            unlink(tmp.path)
            throw error
        }
        return tmp
    }

    /// `stage(for:producer:)` for bytes.
    public static func stage(_ data: Data, for url: URL) throws -> URL {
        try stage(for: url) { tmp in try writeBytes(data, at: tmp, for: url) }
    }

    /// Where `url` is written before it is complete: `.NAME.tmp-PID` in its directory, the name
    /// a resumed run removes (`RunDirectoryClaim.removeLeftovers`).
    public static func temporary(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    }

    /// fsync of `url`'s directory, so that a rename into it survives a power loss.
    static func syncDirectory(of url: URL) {
        let dfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Writes `data` as the whole file at `tmp` (no durability: the callers fsync); errors name `url`.
    static func writeBytes(_ data: Data, at tmp: String, for url: URL) throws {
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw failure(url, "open") }
        defer { close(fd) }
        let ok = data.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }  // empty: nothing to write
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, base + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        guard ok else { throw failure(url, "write") }
    }

    private static func failure(_ url: URL, _ what: String) -> UserError {
        UserError("cannot write \(url.path): \(what): \(String(cString: strerror(errno)))")
    }
}
