import AETrainCore
import ArgumentParser
import Foundation

/// Rank 0's console: the sheet's table lines, and on a terminal one live line below them
/// (iteration/total, steps per second, ETA, current loss) redrawn a few times a second.
/// Not a terminal: table lines only. Quiet: nothing.
///
/// Under mpirun a rank's stdout is always a pseudo-terminal of mpirun's, whatever mpirun's own
/// output is, so there the live line is off unless asked for with `--progress always`.
final class Console {
    let quiet: Bool
    let live: Bool
    let total: Int
    /// The iteration the run started at (a resumed run starts past 0).
    var first = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var lineShown = false

    enum Mode: String, ExpressibleByArgument, CaseIterable { case auto, always, never }

    init(quiet: Bool, total: Int, mode: Mode = .auto) {
        self.quiet = quiet
        self.total = total
        let underMPIRun = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
        switch mode {
        case .always: live = !quiet
        case .never: live = false
        case .auto: live = !quiet && isatty(STDOUT_FILENO) == 1 && !underMPIRun
        }
    }

    func line(_ text: String) {
        guard !quiet else { return }
        if lineShown { print("\r\u{1B}[K", terminator: ""); lineShown = false }
        print(text)
    }

    /// Called every step; draws at most every 0.2 s.
    func step(_ iteration: Int, loss: Double) {
        guard live else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(iteration + 1 - first) / max(elapsed, 1e-9)
        let eta = Double(total - iteration - 1) / max(rate, 1e-9)
        let text = String(format: "%7d/%d  %7.1f steps/s  ETA %@  loss %.4g", iteration + 1, total, rate, Console.clock(eta), loss)
        print("\r\u{1B}[K" + text, terminator: "")
        fflush(stdout)
        lineShown = true
    }

    func finish() {
        if lineShown { print("\r\u{1B}[K", terminator: ""); fflush(stdout); lineShown = false }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
