import Foundation

/// An LFW JPEG tree turned into one float32 (N, H, W) .npy and a CSV sidecar
/// (`row,file,person`), decoded in shares by the ranks.
///
/// Collectives, in order: the listing and its checks, the decoding, the gather to rank 0,
/// rank 0's writing. Every rank takes part in each, so an error on any rank stops all of them.
public struct LFWPreparation {
    /// What the preparation reports while it runs, on rank 0.
    public enum Event {
        /// The tree is listed: `images` files of `people` people, each decoded to `shape`.
        case listed(images: Int, people: Int, shape: ImageShape, ranks: Int)
        /// Rank 0 has decoded `done` of its `count` images (every few seconds).
        case decoded(done: Int, count: Int)
    }

    /// What was written: `images` rows of `shape`.
    public struct Summary: Equatable, Sendable {
        public var images: Int
        public var shape: ImageShape
        public var array: URL
        public var sidecar: URL
    }

    /// The LFW tree (Person_Name/Person_Name_0001.jpg).
    public var directory: String
    public var settings: LFWSettings
    /// The .npy written; the CSV goes beside it with the extension .csv.
    public var output: URL
    public var sidecar: URL { output.deletingPathExtension().appendingPathExtension("csv") }
    /// Seconds between two `.decoded` events.
    public var reportInterval: TimeInterval = 3

    public init(directory: String, settings: LFWSettings, output: URL) {
        self.directory = directory; self.settings = settings; self.output = output
    }

    /// Runs on every rank; returns what rank 0 wrote (on every rank).
    public func run(comm: Communicator, progress: (Event) -> Void) throws -> Summary {
        let (entries, rows) = try comm.collectively { () throws -> ([LFWEntry], Range<Int>) in
            // The outputs never overwrite an input, nor each other.
            try InputOutputPaths.check(output: output, setting: "out", inputs: [URL(fileURLWithPath: directory)])
            try InputOutputPaths.check(output: sidecar, setting: "out", inputs: [URL(fileURLWithPath: directory)])
            guard InputOutputPaths.conflict(output: sidecar, input: output) == nil else {
                throw UserError("⟨out⟩ \(output.relativePath): the CSV sidecar would be the same file; name the array with .npy")
            }
            return try listAndShare(comm: comm)
        }
        let shape = settings.imageShape
        if comm.isRoot {
            progress(.listed(images: entries.count, people: Set(entries.map(\.person)).count, shape: shape, ranks: comm.size))
        }
        let local = try comm.collectively { try decode(entries, rows: rows, comm: comm, progress: progress) }
        let counts = (0..<comm.size).map {
            DatasetShard.shardRange(examples: entries.count, rank: $0, size: comm.size).count * shape.pixels
        }
        let all = try comm.gather(local, counts: counts, root: 0)  // (N, H·W) on rank 0, empty elsewhere
        try comm.collectively {
            guard comm.isRoot else { return }
            try NPYWriter.write(all, shape: [entries.count, shape.height, shape.width], to: output)
            var csv = "row,file,person\n"
            for (i, e) in entries.enumerated() { csv += "\(i),\(CSV.field(e.file)),\(CSV.field(e.person))\n" }
            try DurableFile.write(Data(csv.utf8), to: sidecar)
        }
        return Summary(images: entries.count, shape: shape, array: output, sidecar: sidecar)
    }

    /// The tree's images in sorted order and this rank's share of them, after the checks.
    private func listAndShare(comm: Communicator) throws -> ([LFWEntry], Range<Int>) {
        try settings.validate()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw UserError("\(directory): no such directory")
        }
        guard isDirectory.boolValue else { throw UserError("\(directory): not a directory (expected an LFW tree)") }
        let parent = output.deletingLastPathComponent().path
        guard FileManager.default.isWritableFile(atPath: parent) else {
            throw UserError("⟨out⟩ \(output.relativePath): cannot write into \(parent)")
        }
        let entries = try LFWTree.list(directory, minFaces: settings.minFacesPerPerson)
        guard entries.count >= comm.size else {
            throw UserError("\(directory): \(entries.count) images cannot be shared by \(comm.size) ranks")
        }
        return (entries, DatasetShard.shardRange(examples: entries.count, rank: comm.rank, size: comm.size))
    }

    /// This rank's `rows` of `entries`, decoded: (rows.count, H·W).
    private func decode(_ entries: [LFWEntry], rows: Range<Int>, comm: Communicator, progress: (Event) -> Void) throws -> [Float] {
        let pixels = settings.imageShape.pixels
        var local = [Float](repeating: 0, count: rows.count * pixels)
        var lastReport = Date()
        try local.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }  // no rows: nothing to decode
            for (i, row) in rows.enumerated() {
                // Image i fills elements [i·pixels, (i+1)·pixels) of rows.count · pixels.
                try LFWTree.load(root: directory, entry: entries[row], settings: settings, into: base + i * pixels)
                if comm.isRoot, Date().timeIntervalSince(lastReport) > reportInterval {
                    lastReport = Date()
                    progress(.decoded(done: i + 1, count: rows.count))
                }
            }
        }
        return local
    }
}

/// Fields of the CSV files aetrain writes.
public enum CSV {
    /// A field, quoted when it holds a comma, a quote or a line break.
    public static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
