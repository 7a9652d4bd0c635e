import Foundation

/// A file rank 0 writes in pieces at known byte offsets (pwrite), under a temporary name
/// (`DurableFile.temporary`) until `prepare()` makes it durable and `FileSet.swap` puts it in
/// place with the rest of its set. A failed write is kept, not thrown, so that rank 0 stays in
/// step with the other ranks' collectives; `prepare()` throws it. `abandon()` removes the
/// temporary file.
final class OffsetFile {
    let url: URL
    private let temporary: String
    private var fd: Int32
    private(set) var failure: UserError?

    init(_ url: URL) throws {
        self.url = url
        temporary = DurableFile.temporary(for: url).path
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw UserError("cannot write \(url.relativePath): \(String(cString: strerror(errno)))") }
    }

    deinit { abandon() }

    /// Writes `bytes` at `offset`; the first failure is kept for `prepare()`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard failure == nil, let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                failure = UserError("cannot write \(url.relativePath): \(String(cString: strerror(errno)))")
                return
            }
            done += n
        }
    }

    func write(_ data: Data, at offset: Int) { data.withUnsafeBytes { write($0, at: offset) } }

    /// Makes the file durable under its temporary name, which it returns; `FileSet.swap` then
    /// puts it in place with the other files of its set.
    func prepare() throws -> URL {
        if let failure { abandon(); throw failure }
        guard fsync(fd) == 0, close(fd) == 0 else {
            let error = UserError("cannot write \(url.relativePath): \(String(cString: strerror(errno)))")
            fd = -1
            abandon()
            throw error
        }
        fd = -1
        return URL(fileURLWithPath: temporary)
    }

    /// Removes the temporary file (nothing under the final name is touched).
    func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporary)
    }
}
