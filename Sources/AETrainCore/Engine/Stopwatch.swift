import Dispatch

/// Wall-clock nanoseconds split into named counters (`lap` charges the time since the
/// previous lap to one of them).
public struct Stopwatch {
    private var last = DispatchTime.now().uptimeNanoseconds
    public init() {}
    public mutating func lap(_ counter: inout UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        counter += now - last
        last = now
    }
}
