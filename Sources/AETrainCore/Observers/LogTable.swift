import Foundation

/// Rank 0's console: the banner, the sheet's table (`'%7s %8s …'` header, `'%7d %8.2f …'`
/// rows) with aetrain's own columns right of a bar, and the closing lines. Each model's
/// table has the columns it measures (`TrainableModel.columns`). Quiet: nothing but the
/// message of a stop on request.
public final class LogTable: RunObserver {
    let quiet: Bool
    private var columns: [LogColumn] = []
    /// The live progress line, if one is drawn below the table: cleared before each line.
    weak var progress: ProgressLine?

    public init(quiet: Bool) { self.quiet = quiet }

    public func started(_ run: RunInfo) throws {
        columns = run.columns
        for warning in run.warnings { fputs(warning + "\n", stderr) }
        line(run.banner)
        for note in run.notes { line(note) }
        line(Self.header(columns))
    }

    public func logged(_ record: LogRecord, steps: Int) throws { line(Self.row(record, columns: columns, steps: steps)) }

    public func finished(_ result: RunResult) throws {
        progress?.clear()
        let dir = result.directory.relativePath
        for text in result.outputs?.lines ?? [] { line(text) }
        switch result.outcome {
        case .finished:
            let images = result.dataset.imageShape != nil
            let files = FinalFiles.names(result) + ["config.json", "metrics.jsonl"] + (images ? ["dataset.png"] : [])
            line("wrote \(dir)/: " + files.joined(separator: ", ") + (result.lastCheckpoint != nil ? ", checkpoints/" : ""))
        case .stopped(let iteration):
            // Printed even when quiet: it says where the run can be continued.
            print("stopped on request (SIGTERM or SIGINT) before iteration \(iteration); checkpoint "
                  + "\(result.lastCheckpoint?.path ?? "none"); continue with: aetrain train --resume \(dir)")
        case .diverged:
            break  // the run ends with an error that says it
        }
    }

    func line(_ text: String) {
        guard !quiet else { return }
        progress?.clear()
        print(text)
    }

    /// `nbit` and the sheet's columns, then ` |` and aetrain's.
    public static func header(_ columns: [LogColumn]) -> String {
        let sheet = columns.filter(\.isSheetColumn), own = columns.filter { !$0.isSheetColumn && !$0.isHeldOut }
        let heldOut = columns.filter(\.isHeldOut)
        var text = (["nbit".leftPadded(to: 7, with: " ")] + sheet.map { $0.title.leftPadded(to: 8, with: " ") }).joined(separator: " ")
        if !own.isEmpty { text += " |" + own.map { $0.title.leftPadded(to: 7, with: " ") }.joined(separator: " ") }
        if !heldOut.isEmpty { text += " |" + heldOut.map { $0.title.leftPadded(to: 8, with: " ") }.joined(separator: " ") }
        if own.contains(where: \.isTiming) { text += "  (ms/step)" }
        return text
    }

    /// - steps: steps since the previous row, to turn the time split into ms per step.
    public static func row(_ r: LogRecord, columns: [LogColumn], steps: Int) -> String {
        let perStep = Double(max(1, steps)) / 1000
        func sheet(_ c: LogColumn) -> String {
            let v: Double? = switch c {
            case .rec: r.rec
            case .spa: r.spa
            case .ent: r.ent
            case .reg: r.reg
            case .auxk: r.auxK
            default: r.loss
            }
            return String(format: "%8.2f", v ?? .nan)
        }
        func own(_ c: LogColumn) -> String {
            switch c {
            case .l0: String(format: "%7.1f", r.l0 ?? .nan)
            case .dead: String(format: "%7d", r.deadUnits ?? 0)
            case .neverFired: String(format: "%7d", r.neverFiredUnits ?? 0)
            case .ev: String(format: "%7.4f", r.explainedVariance ?? .nan)
            case .comp: String(format: "%7.2f", (r.computeSeconds ?? .nan) / perStep)
            case .comm: String(format: "%7.2f", (r.communicationSeconds ?? .nan) / perStep)
            case .evalRec: String(format: "%8.2f", r.evalRec ?? .nan)
            case .evalL0: String(format: "%8.1f", r.evalL0 ?? .nan)
            case .evalDead: String(format: "%8d", r.evalDeadUnits ?? 0)
            case .evalEV: String(format: "%8.4f", r.evalExplainedVariance ?? .nan)
            case .esn: String(format: "%7.4f", r.explainedSquaredNorm ?? .nan)
            case .evalESN: String(format: "%8.4f", r.evalExplainedSquaredNorm ?? .nan)
            case .lr: String(format: "%7.1e", r.learningRate ?? .nan)
            case .lambda: String(format: "%7.3g", r.lambda ?? .nan)
            default: String(format: "%7.2f", (r.optimizerSeconds ?? .nan) / perStep)
            }
        }
        let sheetColumns = columns.filter(\.isSheetColumn), ownColumns = columns.filter { !$0.isSheetColumn && !$0.isHeldOut }
        let heldOut = columns.filter(\.isHeldOut)
        var text = ([String(format: "%7d", r.iteration)] + sheetColumns.map(sheet)).joined(separator: " ")
        if !ownColumns.isEmpty { text += " | " + ownColumns.map(own).joined(separator: " ") }
        if !heldOut.isEmpty { text += " | " + heldOut.map(own).joined(separator: " ") }
        return text
    }
}
