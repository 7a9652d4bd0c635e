import Foundation

/// A rank's timeline of spans (`--trace`), recorded into a buffer allocated once: `begin`
/// and `end` read the clock and store 24 bytes, nothing else (no allocation, no lock; one
/// thread records). Without `--trace` there is no recorder, and every call site is a nil
/// check (`trace?.begin(.adam)`).
///
/// Bounded: the first `maxSteps` steps are recorded in full (their spans), and every span
/// outside a step (log lines, checkpoints) up to the capacity reserved for them; the rest is
/// counted in `dropped`.
///
/// Clock: CLOCK_MONOTONIC, from an origin every rank takes right after a common barrier
/// (`init`), so the ranks' timelines line up to within the barrier's exit skew (microseconds
/// on one node, about the network latency across nodes); no clock synchronization between
/// hosts is assumed.
public final class TraceRecorder {
    struct Event {
        var span: TraceSpan
        var step: Int32
        var start: UInt64      // ns since `origin`
        var duration: UInt64   // ns
    }

    /// Steps `train --trace` records in full: the first 1000 (about 0.5 MB per rank, 2 MB of
    /// JSON per rank).
    public static let trainSteps = 1000

    /// Steps recorded in full.
    public let maxSteps: Int
    public let capacity: Int
    public private(set) var count = 0
    public private(set) var dropped = 0
    let events: UnsafeMutablePointer<Event>
    let origin: UInt64

    /// Open spans: at most `maxDepth` deep.
    static let maxDepth = 8
    private let openSpans: UnsafeMutablePointer<(span: TraceSpan, start: UInt64)>
    private var depth = 0
    private var step: Int32 = -1
    private var stepsSeen = 0
    /// The current step is one of the first `maxSteps`.
    private var recordingStep = false

    /// Collective: every rank calls it (a barrier, then the origin of its clock).
    /// - maxSteps: steps recorded in full. - otherSpans: room for spans outside steps.
    public init(maxSteps: Int, otherSpans: Int, comm: Communicator) throws {
        self.maxSteps = max(0, maxSteps)
        capacity = self.maxSteps * TraceSpan.perStep + max(0, otherSpans)
        events = .allocate(capacity: max(1, capacity))
        openSpans = .allocate(capacity: Self.maxDepth)
        var sync = [0.0]
        try comm.allreduceSum(&sync)
        origin = Self.now()
    }

    deinit {
        events.deallocate()
        openSpans.deallocate()
    }

    @inline(__always) static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// Starts step `index`'s span; its spans are recorded if it is among the first `maxSteps`.
    public func beginStep(_ index: Int) {
        step = Int32(truncatingIfNeeded: index)
        recordingStep = stepsSeen < maxSteps
        stepsSeen += 1
        begin(.step)
    }

    /// Ends the step's span (as `end()`), and stops recording inner spans until the next step.
    public func endStep() {
        end()
        recordingStep = false
    }

    @inline(__always) public func begin(_ span: TraceSpan) {
        guard depth < Self.maxDepth else { return }  // deeper than any call site nests
        openSpans[depth] = (span, Self.now())
        depth += 1
    }

    /// Ends the innermost open span.
    @inline(__always) public func end() {
        guard depth > 0 else { return }
        let now = Self.now()
        depth -= 1
        let (span, start) = openSpans[depth]
        guard !span.isInsideStep || recordingStep else { return }
        guard count < capacity else { dropped += 1; return }
        events[count] = Event(span: span, step: span.isInsideStep ? step : -1, start: start &- origin, duration: now &- start)
        count += 1
    }

    /// Runs `body` inside a span.
    @inline(__always) public func span<R>(_ span: TraceSpan, _ body: () throws -> R) rethrows -> R {
        begin(span)
        defer { end() }
        return try body()
    }
}
