import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct PrepareLFW: JobCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare-lfw",
        abstract: "Turn an LFW JPEG tree into a float32 N×H×W .npy, with the pixels of scikit-learn's fetch_lfw_people.",
        discussion: """
            Crop rows 70–195 and columns 78–172, resize by --resize with Pillow's default filter (antialiased \
            bicubic), grey = mean of R, G, B in [0, 1]. People and files in sorted order (scikit-learn then shuffles; \
            aetrain does not). Writes OUT and, beside it, OUT with .csv (row,file,person). Under mpirun each rank \
            decodes its share of the files.
            """)

    @Argument(help: "The LFW tree: lfw/, lfw_funneled/ or lfw-deepfunneled/ (Person_Name/Person_Name_0001.jpg).")
    var directory: String

    @Option(help: "Output .npy file.")
    var out: String

    @Option(help: "Scale of the 125x94 crop: 0.5 gives 62x47, 0.3 gives 37x28.")
    var resize: Double = 0.5

    @Option(help: "Keep only people with at least this many images.")
    var minFacesPerPerson: Int = 0

    @OptionGroup var job: JobOptions

    func run(comm: MPICommunicator) throws {
        let settings = LFWSettings(resize: resize, minFacesPerPerson: minFacesPerPerson)
        let outURL = URL(fileURLWithPath: out)
        let csvURL = outURL.deletingPathExtension().appendingPathExtension("csv")
        let (entries, rows) = try comm.collectively { () throws -> ([LFWEntry], Range<Int>) in
            try settings.validate()
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
                throw UserError("\(directory): no such directory")
            }
            guard isDir.boolValue else { throw UserError("\(directory): not a directory (expected an LFW tree)") }
            let parent = outURL.deletingLastPathComponent().path
            guard FileManager.default.isWritableFile(atPath: parent) else {
                throw UserError("--out \(out): cannot write into \(parent)")
            }
            let entries = try LFWTree.list(directory, minFaces: minFacesPerPerson)
            guard entries.count >= comm.size else {
                throw UserError("\(directory): \(entries.count) images cannot be shared by \(comm.size) ranks")
            }
            return (entries, DatasetShard.shardRange(examples: entries.count, rank: comm.rank, size: comm.size))
        }
        let shape = settings.imageShape
        if comm.isRoot {
            print("prepare-lfw: \(entries.count) images of \(Set(entries.map(\.person)).count) people → \(shape) pixels, \(comm.size) rank(s)")
        }

        // Each rank decodes its slice; rank 0 reports its own progress every few seconds.
        var local = [Float](repeating: 0, count: rows.count * shape.pixels)
        try comm.collectively {
            var lastReport = Date()
            try local.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                for (i, row) in rows.enumerated() {
                    try LFWTree.load(root: directory, entry: entries[row], settings: settings, into: base + i * shape.pixels)
                    if comm.isRoot, Date().timeIntervalSince(lastReport) > 3 {
                        lastReport = Date()
                        print("prepare-lfw: rank 0 decoded \(i + 1) of its \(rows.count) images (\(100 * (i + 1) / rows.count)%)")
                    }
                }
            }
        }

        let counts = (0..<comm.size).map {
            DatasetShard.shardRange(examples: entries.count, rank: $0, size: comm.size).count * shape.pixels * MemoryLayout<Float>.stride
        }
        var all = [Float](repeating: 0, count: comm.isRoot ? entries.count * shape.pixels : 0)
        try local.withUnsafeBytes { send in
            try all.withUnsafeMutableBytes { receive in
                try comm.gather(send, into: receive.baseAddress, counts: counts, root: 0)
            }
        }
        try comm.collectively {
            guard comm.isRoot else { return }
            try all.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [entries.count, shape.height, shape.width], to: outURL) }
            var csv = "row,file,person\n"
            for (i, e) in entries.enumerated() { csv += "\(i),\(CSV.field(e.file)),\(CSV.field(e.person))\n" }
            try DurableFile.write(Data(csv.utf8), to: csvURL)
            print("wrote \(out) (\(entries.count)×\(shape.height)×\(shape.width) float32) and \(csvURL.path)")
        }
    }
}

enum CSV {
    /// A field, quoted when it holds a comma, a quote or a line break.
    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
