import Foundation

/// Everything recorded about a run, written as config.json.
public struct RunConfig: Codable {
    public var settings: TrainSettings
    public var dataset: DatasetInfo
    public var ranks: Int
    public var blasThreadsPerRank: Int
    public var sampler: String = "global"
    public var started: String
    public var commandLine: [String]
    /// `--data` as given (nil: the embedded faces), with the LFW and image-shape options, so
    /// that `--resume` finds the same data.
    public var data: String?
    public var lfw: LFWSettings?
    public var imageShape: String?
    /// The checkpoint this run continued from, if any.
    public var resumedFrom: String?
    /// nil or "sparse-autoencoder"; "sparse-coding", "tied-linear" or "pca" for the sheet's other models.
    public var model: String?

    public init(settings: TrainSettings, dataset: DatasetInfo, ranks: Int, blasThreadsPerRank: Int, started: String,
                commandLine: [String], data: String? = nil, lfw: LFWSettings? = nil, imageShape: String? = nil, resumedFrom: String? = nil) {
        self.settings = settings; self.dataset = dataset; self.ranks = ranks
        self.blasThreadsPerRank = blasThreadsPerRank; self.started = started; self.commandLine = commandLine
        self.data = data; self.lfw = lfw; self.imageShape = imageShape; self.resumedFrom = resumedFrom
    }
}

/// The output directory of a run. Only rank 0 creates one; every write is atomic or
/// append-only, so an error never leaves a damaged file behind.
public final class RunDirectory {
    public let url: URL
    private var metrics: FileHandle?

    /// Creates the directory if needed and checks that it is writable (rank 0 only).
    public init(path: String) throws {
        url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw UserError("--out \(path): exists and is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw UserError("--out \(path): cannot create the directory: \(error.localizedDescription)")
            }
        }
        guard FileManager.default.isWritableFile(atPath: url.path) else {
            throw UserError("--out \(path): the directory is not writable")
        }
    }

    deinit { try? metrics?.close() }

    public func writeConfig(_ config: RunConfig) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try AtomicFile.write(try encoder.encode(config), to: url.appendingPathComponent("config.json")) } catch let e as UserError { throw e } catch {
            throw UserError("cannot encode config.json: \(error.localizedDescription)")
        }
    }

    /// Starts metrics.jsonl, keeping the lines of iterations before `iteration` (a resumed
    /// run continues the file; a new run starts it empty), atomically.
    public func startMetrics(keepingBefore iteration: Int = 0) throws {
        let file = url.appendingPathComponent("metrics.jsonl")
        var kept = Data()
        if iteration > 0, let text = try? String(contentsOf: file, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let record = try? JSONDecoder().decode(LogRecord.self, from: Data(line.utf8)), record.iteration < iteration {
                    kept.append(contentsOf: Array(line.utf8) + [0x0A])
                }
            }
        }
        try AtomicFile.write(kept, to: file)
        guard let handle = FileHandle(forWritingAtPath: file.path) else { throw UserError("cannot open \(file.path) for writing") }
        _ = try? handle.seekToEnd()
        metrics = handle
    }

    /// Appends one JSON object and a newline to metrics.jsonl.
    public func appendMetrics(_ record: LogRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            var line = try encoder.encode(record)
            line.append(0x0A)
            try metrics?.write(contentsOf: line)
        } catch {
            throw UserError("cannot append to \(url.path)/metrics.jsonl: \(error.localizedDescription)")
        }
    }
}

/// The sheet's table, `'%7s %8s %8s %8s %8s'` header and `'%7d %8.2f %8.2f %8.2f %8.2f'`
/// rows, followed by aetrain's own columns: L0, dead units, explained variance and the
/// milliseconds per step spent in compute, communication and the optimizer since the last row.
public enum SheetTable {
    public static var header: String {
        (["nbit".leftPadded(to: 7, with: " ")] + ["rec", "spa", "ent", "reg"].map { $0.leftPadded(to: 8, with: " ") })
            .joined(separator: " ") + " |" + ["L0", "dead", "EV", "comp", "comm", "opt"]
            .map { $0.leftPadded(to: 7, with: " ") }.joined(separator: " ") + "  (ms/step)"
    }

    /// - steps: steps since the previous row, to turn the time split into ms per step.
    public static func row(_ r: LogRecord, steps: Int) -> String {
        let n = Double(max(1, steps)) / 1000
        return String(format: "%7d %8.2f %8.2f %8.2f %8.2f | %7.1f %7d %7.4f %7.2f %7.2f %7.2f",
                      r.iteration, r.rec, r.spa, r.ent, r.reg, r.l0, r.deadUnits, r.explainedVariance,
                      r.computeSeconds / n, r.communicationSeconds / n, r.optimizerSeconds / n)
    }
}
