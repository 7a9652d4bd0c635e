import Foundation

/// config.json and metrics.jsonl: what the run is, and one JSON line per log line, in the
/// directory the engine has claimed (`RunDirectoryClaim`). Every write is atomic or
/// append-only, so an error never leaves a damaged file behind.
public final class RunFiles: RunObserver {
    private var metrics: FileHandle?
    private var metricsURL: URL?

    public init() {}
    deinit { try? metrics?.close() }

    public func started(_ run: RunInfo) throws {
        let url = run.directory  // made and claimed by the engine (`RunDirectoryClaim`)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try DurableFile.write(try encoder.encode(run.config), to: url.appendingPathComponent("config.json")) } catch let e as UserError { throw e } catch {
            throw UserError("cannot encode config.json: \(error.localizedDescription)")
        }
        // A resumed run keeps the lines of the iterations before it; a new run starts empty.
        let file = url.appendingPathComponent("metrics.jsonl")
        var kept = Data()
        if run.firstIteration > 0, let text = try? String(contentsOf: file, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let record = try? JSONDecoder().decode(LogRecord.self, from: Data(line.utf8)), record.iteration < run.firstIteration {
                    kept.append(contentsOf: Array(line.utf8) + [0x0A])
                }
            }
        }
        try DurableFile.write(kept, to: file)
        guard let handle = FileHandle(forWritingAtPath: file.path) else { throw UserError("cannot open \(file.path) for writing") }
        _ = try? handle.seekToEnd()
        metrics = handle
        metricsURL = file
    }

    public func logged(_ record: LogRecord, steps: Int) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            var line = try encoder.encode(record)
            line.append(0x0A)
            try metrics?.write(contentsOf: line)
        } catch {
            throw UserError("cannot append to \(metricsURL?.path ?? "metrics.jsonl"): \(error.localizedDescription)")
        }
    }

    public func finished(_ result: RunResult) throws {
        try? metrics?.synchronize()
    }
}
