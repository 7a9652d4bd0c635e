import Dispatch

/// Times and traces the step's phases from the outside: every phase is one call wrapped in
/// `compute` or `communicate`, so that the maths and the reductions hold no timer laps and no
/// trace calls of their own.
///
/// Wall-clock time is split into local compute and exposed communication (time spent inside
/// communication calls, not hidden behind compute): a `communicate` phase counts what passed
/// since the last lap as compute, then its own time as communication; `finish` counts the rest
/// of the step as compute.
public final class StepClock {
    /// Nanoseconds since the last `take()`.
    public private(set) var computeNanoseconds: UInt64 = 0
    public private(set) var communicationNanoseconds: UInt64 = 0
    /// Records the spans (`--trace`) from the training thread; nil: nothing is recorded.
    public var trace: TraceRecorder?
    private var last: UInt64 = 0

    public init() {}

    /// A step starts: nothing before it is counted.
    func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// A compute phase: traced as `span` (nil: not traced); its time is compute.
    @inline(__always)
    func compute<R>(_ span: TraceSpan?, _ body: () throws -> R) rethrows -> R {
        if let span { trace?.begin(span) }
        let result = try body()
        if span != nil { trace?.end() }
        return result
    }

    /// A communication phase: traced as `span` (nil: not traced); its time is communication.
    @inline(__always)
    func communicate<R>(_ span: TraceSpan?, _ body: () throws -> R) rethrows -> R {
        lap(&computeNanoseconds)
        if let span { trace?.begin(span) }
        let result = try body()
        if span != nil { trace?.end() }
        lap(&communicationNanoseconds)
        return result
    }

    /// The step ends: the time since the last phase is compute.
    func finish() { lap(&computeNanoseconds) }

    /// A part of the update, which the model times as a whole: traced only.
    @inline(__always)
    func traced<R>(_ span: TraceSpan, _ body: () throws -> R) rethrows -> R {
        trace?.begin(span)
        defer { trace?.end() }
        return try body()
    }

    /// (compute, communication) nanoseconds since the last call; starts a new window.
    func take() -> (compute: UInt64, communication: UInt64) {
        defer { computeNanoseconds = 0; communicationNanoseconds = 0 }
        return (computeNanoseconds, communicationNanoseconds)
    }

    private func lap(_ counter: inout UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        counter += now - last
        last = now
    }
}
