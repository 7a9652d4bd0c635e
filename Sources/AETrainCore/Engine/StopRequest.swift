import CProcessControl

/// Stop requests from outside: SIGTERM or SIGINT set a flag that the run reads once per
/// iteration, and the model sums it with the other ranks' in a reduction it makes anyway.
/// The handlers are C (`CProcessControl`): only async-signal-safe code may run in them.
public enum StopRequest {
    /// Installs the handlers (idempotent).
    public static func install() { aet_signals_install() }
    /// Whether this process was asked to stop.
    public static var received: Bool { aet_signal_received() != 0 }
    /// Sends `signal` to this process (test hooks).
    public static func raise(_ signal: Int32) { aet_signal_raise(signal) }
}
