import Foundation

/// On a terminal, one live line below the table (iteration/total, steps per second, ETA,
/// current loss), redrawn a few times a second.
///
/// Under mpirun a rank's stdout is always a pseudo-terminal of mpirun's, whatever mpirun's own
/// output is, so there the line is off unless asked for (`always`).
public final class ProgressLine: RunObserver {
    public enum Mode: String, CaseIterable, Codable, Sendable { case auto, always, never }

    let live: Bool
    private var total = 0, first = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var shown = false

    init(mode: Mode, table: LogTable) {
        let underMPIRun = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
        switch mode {
        case .always: live = true
        case .never: live = false
        case .auto: live = isatty(STDOUT_FILENO) == 1 && !underMPIRun
        }
        if live { table.progress = self }
    }

    public func started(_ run: RunInfo) throws {
        total = run.settings.iterations
        first = run.firstIteration
        start = Date()
    }

    public func iterated(_ iteration: Int, loss: Double) {
        guard live else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = now
        let rate = Double(iteration + 1 - first) / max(now.timeIntervalSince(start), 1e-9)
        let eta = Double(total - iteration - 1) / max(rate, 1e-9)
        let text = String(format: "%7d/%d  %7.1f steps/s  ETA %@  loss %.4g", iteration + 1, total, rate, Self.clock(eta), loss)
        print("\r\u{1B}[K" + text, terminator: "")
        fflush(stdout)
        shown = true
    }

    public func finished(_ result: RunResult) throws { clear() }

    /// Removes the line (before a table line is printed).
    func clear() {
        guard shown else { return }
        print("\r\u{1B}[K", terminator: "")
        fflush(stdout)
        shown = false
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
