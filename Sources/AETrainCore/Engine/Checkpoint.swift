import Foundation

/// Everything needed to continue a run exactly where it stopped, for any model:
///
///     "AETCKPT1"                 8 bytes, magic and format version
///     header length H            u64 little-endian
///     header                     H bytes of JSON (`Checkpoint.Header`)
///     sections                   each section's values back to back, little-endian, in the
///                                header's order (f32, f64 or i32)
///     checksum                   u64, FNV-1a over every byte before it
///
/// The sparse autoencoder's sections are θ, Adam's m and v (float32, `ParameterLayout` order)
/// and the sampler's permutation (int32); files written before the header listed its sections
/// hold exactly these.
///
/// Rank 0 writes it atomically (temporary file, fsync, rename, fsync of the directory), so a
/// crash leaves either the previous file or the new one, never a torn one under the final
/// name. A damaged file (torn by a full disk, bit rot) fails its checksum when read.
public struct Checkpoint {
    public struct Header: Codable, Equatable {
        public var version = 1
        /// nil in files from before other models had checkpoints: the sparse autoencoder.
        public var model: ModelKind?
        /// The run that wrote it (config.json's `runID`); nil in older files.
        public var runID: String?
        /// The next iteration to run (= Adam steps taken, alternations done).
        public var iteration: Int
        public var settings: TrainSettings
        public var datasetFingerprint: String
        public var examples: Int
        public var shape: ModelShape
        /// xoshiro256** state of the batch sampler, as hex strings (JSON numbers lose 64-bit
        /// precision); nil for a model without a sampler.
        public var samplerRNG: [String]?
        public var ranks: Int
        public var written: String
        /// The payload's layout; nil in files that predate it (the sparse autoencoder's).
        public var sections: [Section]?
        /// The run's normalization (kind and σ; μ is the section `normalization.mean`), which a
        /// resumed run applies rather than computing it again; nil in older files (the sheet's).
        public var normalization: Normalization.Record?

        public init(model: ModelKind?, runID: String? = nil, iteration: Int, settings: TrainSettings, datasetFingerprint: String, examples: Int,
                    shape: ModelShape, samplerRNG: [String]?, ranks: Int, written: String) {
            self.model = model; self.runID = runID; self.iteration = iteration; self.settings = settings; self.datasetFingerprint = datasetFingerprint
            self.examples = examples; self.shape = shape; self.samplerRNG = samplerRNG; self.ranks = ranks; self.written = written
        }
    }

    /// One named array of the payload.
    public struct Section: Codable, Equatable {
        public enum Kind: String, Codable { case f32, f64, i32 }
        public var name: String
        public var kind: Kind
        public var count: Int
        var bytes: Int { count * (kind == .f64 ? 8 : 4) }
    }

    /// A section's values.
    public enum Values: Equatable {
        case f32([Float]), f64([Double]), i32([Int32])
        var kind: Section.Kind {
            switch self { case .f32: .f32; case .f64: .f64; case .i32: .i32 }
        }
        var count: Int {
            switch self { case .f32(let v): v.count; case .f64(let v): v.count; case .i32(let v): v.count }
        }
    }

    public var header: Header
    /// The payload, in the header's section order.
    public var values: [(name: String, values: Values)]

    static let magic = Array("AETCKPT1".utf8)

    public init(header: Header, values: [(name: String, values: Values)]) {
        var header = header
        header.sections = values.map { Section(name: $0.name, kind: $0.values.kind, count: $0.values.count) }
        self.header = header
        self.values = values
    }

    /// The normalization the run applied (see `Header.normalization`); nil in older files.
    public func normalization(file: String) throws -> Normalization? {
        guard let record = header.normalization else { return nil }
        return Normalization(record, mean: try f64(Self.normalizationMean, count: header.shape.d, path: file))
    }
    static let normalizationMean = "normalization.mean"

    /// A section's values, or a `UserError` naming `path` if the file lacks it.
    public func section(_ name: String, path: String) throws -> Values {
        guard let found = values.first(where: { $0.name == name }) else {
            throw UserError("\(path): damaged checkpoint (no section \(name))")
        }
        return found.values
    }

    public func f32(_ name: String, count: Int, path: String) throws -> [Float] {
        guard case .f32(let v) = try section(name, path: path), v.count == count else {
            throw UserError("\(path): damaged checkpoint (section \(name) is not \(count) float32)")
        }
        return v
    }

    public func f64(_ name: String, count: Int, path: String) throws -> [Double] {
        guard case .f64(let v) = try section(name, path: path), v.count == count else {
            throw UserError("\(path): damaged checkpoint (section \(name) is not \(count) float64)")
        }
        return v
    }

    public func i32(_ name: String, count: Int, path: String) throws -> [Int32] {
        guard case .i32(let v) = try section(name, path: path), v.count == count else {
            throw UserError("\(path): damaged checkpoint (section \(name) is not \(count) int32)")
        }
        return v
    }

    public func encode() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(header)
        var data = Data(Self.magic)
        data.reserveCapacity(24 + json.count + (header.sections ?? []).reduce(0) { $0 + $1.bytes })
        appendLE(UInt64(json.count), to: &data)
        data.append(json)
        for (_, values) in values {
            switch values {
            case .f32(let v): for x in v { appendLE(x.bitPattern, to: &data) }
            case .f64(let v): for x in v { appendLE(x.bitPattern, to: &data) }
            case .i32(let v): for x in v { appendLE(UInt32(bitPattern: x), to: &data) }
            }
        }
        appendLE(Self.checksum(data), to: &data)
        return data
    }

    /// The run id in `file`'s header, read without the payload (nil when the file is not a
    /// readable checkpoint or predates run ids).
    static func runID(of file: URL) -> String? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        defer { try? handle.close() }
        guard let start = try? handle.read(upToCount: 16), start.count == 16, Array(start.prefix(8)) == magic else { return nil }
        let length = readLE([UInt8](start), at: 8, as: UInt64.self)
        guard length > 0, length <= 1 << 20, let json = try? handle.read(upToCount: Int(length)), json.count == Int(length),
              let header = try? JSONDecoder().decode(Header.self, from: json) else { return nil }
        return header.runID
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
        var header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes[16..<headerEnd])) } catch {
            throw damaged("unreadable header")
        }
        guard header.version == 1 else { throw damaged("unsupported version \(header.version)") }
        // Sizes come from the file: bound them before any arithmetic can overflow.
        let limit = 1 << 31
        guard (1...limit).contains(header.shape.d), (1...limit).contains(header.shape.h), (1...limit).contains(header.examples),
              header.samplerRNG.map({ $0.count == 4 }) ?? true else { throw damaged("sizes out of range") }
        let sections: [Section]
        if let listed = header.sections {
            sections = listed
        } else {
            // Before sections were listed: the sparse autoencoder's θ, m, v and permutation.
            let (dh, overflow) = header.shape.d.multipliedReportingOverflow(by: header.shape.h)
            guard !overflow, dh < limit else { throw damaged("sizes out of range") }
            let p = 2 * dh + header.shape.h + header.shape.d
            sections = [Section(name: "parameters", kind: .f32, count: p), Section(name: "moment1", kind: .f32, count: p),
                        Section(name: "moment2", kind: .f32, count: p), Section(name: "permutation", kind: .i32, count: header.examples)]
            header.sections = sections
        }
        guard sections.count <= 64, sections.allSatisfy({ (0...limit).contains($0.count) }) else { throw damaged("sizes out of range") }
        let payload = sections.reduce(0) { $0 + $1.bytes }
        guard bytes.count - 8 - headerEnd == payload else { throw damaged("sizes do not match the header") }
        var offset = headerEnd
        var values: [(name: String, values: Values)] = []
        for s in sections {
            let start = offset
            switch s.kind {
            case .f32: values.append((s.name, .f32((0..<s.count).map { Float(bitPattern: readLE(bytes, at: start + 4 * $0, as: UInt32.self)) })))
            case .f64: values.append((s.name, .f64((0..<s.count).map { Double(bitPattern: readLE(bytes, at: start + 8 * $0, as: UInt64.self)) })))
            case .i32: values.append((s.name, .i32((0..<s.count).map { Int32(bitPattern: readLE(bytes, at: start + 4 * $0, as: UInt32.self)) })))
            }
            offset += s.bytes
        }
        return Checkpoint(header: header, values: values)
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

    /// Checkpoint files, newest (highest step number, not name) first.
    public func files() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        let numbered = names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("step-"), name.hasSuffix(".ckpt"),
                  let step = Int(name.dropFirst("step-".count).dropLast(".ckpt".count)) else { return nil }
            return (step, name)
        }
        return numbered.sorted { $0.0 > $1.0 }.map { url.appendingPathComponent($0.1) }
    }

    /// Writes `checkpoint` durably and keeps only the newest `keep` files of its run: a file
    /// another run wrote (copied in by hand, say) is never pruned, and never makes this run
    /// prune its own newest file.
    public func write(_ checkpoint: Checkpoint, keep: Int) throws -> URL {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw UserError("cannot create \(url.path): \(error.localizedDescription)")
        }
        let target = file(iteration: checkpoint.header.iteration)
        try DurableFile.write(try checkpoint.encode(), to: target)
        let own = files().filter { $0 == target || Checkpoint.runID(of: $0) == checkpoint.header.runID }
        for old in own.dropFirst(max(1, keep)) where old != target { try? FileManager.default.removeItem(at: old) }
        return target
    }

    /// The newest checkpoint that reads back whole (and, given `runID`, was written by that
    /// run), and a warning for each newer one that did not.
    public func newestValid(runID: String? = nil) throws -> (checkpoint: Checkpoint, file: URL, warnings: [String]) {
        var warnings: [String] = []
        for file in files() {
            do {
                let data = try Data(contentsOf: file)
                let checkpoint = try Checkpoint.decode(data, path: file.path)
                if let runID, let other = checkpoint.header.runID, other != runID {
                    warnings.append("warning: \(file.path) belongs to another run (\(other), not \(runID)); skipped")
                    continue
                }
                return (checkpoint, file, warnings)
            } catch let e as UserError {
                warnings.append("warning: \(e.message); trying an older one")
            } catch {
                warnings.append("warning: \(file.path): unreadable (\(error.localizedDescription)); trying an older one")
            }
        }
        throw UserError(warnings.isEmpty ? "\(url.path): no checkpoint to resume from"
                                         : "\(url.path): no usable checkpoint (\(warnings.count) damaged or of another run)")
    }
}
