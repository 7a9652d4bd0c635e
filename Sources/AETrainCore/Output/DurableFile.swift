import Foundation

/// Whole-file writes that survive a crash or power loss: temporary file, fsync, rename,
/// fsync of the directory. A failure (e.g. a full disk) removes the temporary file and leaves
/// any earlier file under the final name untouched. Every file aetrain writes goes through
/// here: bytes with `write(_:to:)`, files a C library writes by path (PNG) with
/// `write(to:producer:)`.
public enum DurableFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { tmp in
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
    }

    /// `producer` writes the whole file at the temporary path it is given; this makes it
    /// durable and renames it to `url`.
    public static func write(to url: URL, producer: (String) throws -> Void) throws {
        let dir = url.deletingLastPathComponent().path
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        do {
            try producer(tmp)
            let fd = open(tmp, O_RDONLY)
            guard fd >= 0 else { throw failure(url, "open") }
            guard fsync(fd) == 0 else { let e = failure(url, "fsync"); close(fd); throw e }
            guard close(fd) == 0 else { throw failure(url, "close") }
            guard rename(tmp, url.path) == 0 else { throw failure(url, "rename") }
        } catch {
            unlink(tmp)
            throw error
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    private static func failure(_ url: URL, _ what: String) -> UserError {
        UserError("cannot write \(url.path): \(what): \(String(cString: strerror(errno)))")
    }
}
