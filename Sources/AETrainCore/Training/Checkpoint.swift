import Foundation

/// Everything needed to continue a run exactly where it stopped:
///
///     "AETCKPT1"                 8 bytes, magic and format version
///     header length H            u64 little-endian
///     header                     H bytes of JSON (`Checkpoint.Header`)
///     θ, Adam m, Adam v          3 × P float32, little-endian (the flat buffers, `ParameterLayout` order)
///     sampler permutation        N int32
///     checksum                   u64, FNV-1a over every byte before it
///
/// Rank 0 writes it atomically (temporary file, fsync, rename, fsync of the directory), so a
/// crash leaves either the previous file or the new one, never a torn one under the final
/// name. A damaged file (torn by a full disk, bit rot) fails its checksum when read.
public struct Checkpoint {
    public struct Header: Codable, Equatable {
        public var version = 1
        /// The next iteration to run (= Adam steps taken).
        public var iteration: Int
        public var settings: TrainSettings
        public var datasetFingerprint: String
        public var examples: Int
        public var shape: ModelShape
        /// xoshiro256** state of the batch sampler, as hex strings (JSON numbers lose 64-bit precision).
        public var samplerRNG: [String]
        public var ranks: Int
        public var written: String
    }

    public var header: Header
    public var parameters: [Float]
    public var moment1: [Float]
    public var moment2: [Float]
    public var permutation: [Int32]

    static let magic = Array("AETCKPT1".utf8)

    /// The state of `trainer` between iterations.
    public init(_ trainer: Trainer) {
        let store = trainer.store, n = store.layout.count
        header = Header(
            iteration: trainer.iteration, settings: trainer.settings, datasetFingerprint: trainer.shard.info.fingerprint,
            examples: trainer.shard.info.examples, shape: store.layout.shape,
            samplerRNG: trainer.samplerState.rng.state.map { String($0, radix: 16) }, ranks: trainer.comm.size,
            written: ISO8601DateFormatter().string(from: Date()))
        parameters = Array(UnsafeBufferPointer(start: store.params, count: n))
        moment1 = Array(UnsafeBufferPointer(start: store.moment1, count: n))
        moment2 = Array(UnsafeBufferPointer(start: store.moment2, count: n))
        permutation = trainer.samplerState.permutation
    }

    public func encode() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(header)
        var data = Data(Self.magic)
        data.reserveCapacity(24 + json.count + 4 * (3 * parameters.count + permutation.count))
        appendLE(UInt64(json.count), to: &data)
        data.append(json)
        for array in [parameters, moment1, moment2] { for v in array { appendLE(v.bitPattern, to: &data) } }
        for i in permutation { appendLE(UInt32(bitPattern: i), to: &data) }
        appendLE(Self.checksum(data), to: &data)
        return data
    }

    /// Parses and verifies a checkpoint; every problem is a `UserError` naming `path`.
    public static func decode(_ data: Data, path: String) throws -> Checkpoint {
        func damaged(_ why: String) -> UserError { UserError("\(path): damaged checkpoint (\(why))") }
        let bytes = [UInt8](data)
        guard bytes.count >= 24, Array(bytes[0..<8]) == magic else { throw damaged("bad magic") }
        let stored = readLE(bytes, at: bytes.count - 8, as: UInt64.self)
        guard checksum(bytes[0..<(bytes.count - 8)]) == stored else { throw damaged("checksum mismatch") }
        let headerLength = readLE(bytes, at: 8, as: UInt64.self)
        guard headerLength < UInt64(bytes.count), 16 + Int(headerLength) <= bytes.count - 8 else { throw damaged("bad header length") }
        let headerEnd = 16 + Int(headerLength)
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes[16..<headerEnd])) } catch {
            throw damaged("unreadable header")
        }
        guard header.version == 1 else { throw damaged("unsupported version \(header.version)") }
        // Sizes come from the file: bound them before any arithmetic can overflow.
        let limit = 1 << 31
        guard (1...limit).contains(header.shape.d), (1...limit).contains(header.shape.h), (1...limit).contains(header.examples),
              header.samplerRNG.count == 4 else { throw damaged("sizes out of range") }
        let (dh, o1) = header.shape.d.multipliedReportingOverflow(by: header.shape.h)
        let p = 2 * dh + header.shape.h + header.shape.d, n = header.examples
        let (payload, o2) = (3 * p + n).multipliedReportingOverflow(by: 4)
        guard !o1, dh < limit, !o2, bytes.count - 8 - headerEnd == payload else { throw damaged("sizes do not match the header") }
        func floats(_ index: Int) -> [Float] {
            (0..<p).map { Float(bitPattern: readLE(bytes, at: headerEnd + 4 * (index * p + $0), as: UInt32.self)) }
        }
        let permutation = (0..<n).map { Int32(bitPattern: readLE(bytes, at: headerEnd + 4 * (3 * p + $0), as: UInt32.self)) }
        return Checkpoint(header: header, parameters: floats(0), moment1: floats(1), moment2: floats(2), permutation: permutation)
    }

    init(header: Header, parameters: [Float], moment1: [Float], moment2: [Float], permutation: [Int32]) {
        self.header = header; self.parameters = parameters; self.moment1 = moment1
        self.moment2 = moment2; self.permutation = permutation
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 { FNV1a.hash(bytes) }
}

@inline(__always) private func appendLE<I: FixedWidthInteger>(_ v: I, to data: inout Data) {
    withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
}

@inline(__always) private func readLE<I: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: I.Type) -> I {
    var v: I = 0
    for i in 0..<MemoryLayout<I>.size { v |= I(bytes[offset + i]) << (8 * i) }
    return v
}

/// The `checkpoints/` folder of a run directory: `step-000001000.ckpt`, newest = highest step.
public struct CheckpointFolder {
    public let url: URL
    public init(run: URL) { url = run.appendingPathComponent("checkpoints") }

    public func file(iteration: Int) -> URL {
        url.appendingPathComponent("step-" + String(iteration).leftPadded(to: 9) + ".ckpt")
    }

    /// Checkpoint files, newest first.
    public func files() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".ckpt") }.sorted(by: >).map { url.appendingPathComponent($0) }
    }

    /// Writes `checkpoint` durably and keeps only the newest `keep` files.
    public func write(_ checkpoint: Checkpoint, keep: Int) throws -> URL {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw UserError("cannot create \(url.path): \(error.localizedDescription)")
        }
        let target = file(iteration: checkpoint.header.iteration)
        try DurableFile.write(try checkpoint.encode(), to: target)
        for old in files().dropFirst(max(1, keep)) { try? FileManager.default.removeItem(at: old) }
        return target
    }

    /// The newest checkpoint that reads back whole, and a warning for each newer one that did not.
    public func newestValid() throws -> (checkpoint: Checkpoint, file: URL, warnings: [String]) {
        var warnings: [String] = []
        for file in files() {
            do {
                let data = try Data(contentsOf: file)
                return (try Checkpoint.decode(data, path: file.path), file, warnings)
            } catch let e as UserError {
                warnings.append("warning: \(e.message); trying an older one")
            } catch {
                warnings.append("warning: \(file.path): unreadable (\(error.localizedDescription)); trying an older one")
            }
        }
        throw UserError(warnings.isEmpty ? "\(url.path): no checkpoint to resume from"
                                         : "\(url.path): no usable checkpoint (\(warnings.count) damaged)")
    }
}

/// Whole-file writes that survive a crash or power loss: temporary file, fsync, rename,
/// fsync of the directory. A failure (e.g. a full disk) removes the temporary file and leaves
/// any earlier file under the final name untouched. Every file aetrain writes goes through
/// here (`AtomicFile` is the same mechanism under the name the output code uses).
public enum DurableFile {
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent().path
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        func fail(_ what: String) -> UserError {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            return UserError("cannot write \(url.path): \(what): \(reason)")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw fail("open") }
        let ok = data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)  // non-empty: baseAddress exists
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        guard ok else { let e = fail("write"); close(fd); throw e }
        guard fsync(fd) == 0 else { let e = fail("fsync"); close(fd); throw e }
        guard close(fd) == 0 else { throw fail("close") }
        guard rename(tmp, url.path) == 0 else { throw fail("rename") }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
