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
/// Clock: each rank's CLOCK_MONOTONIC, shifted to rank 0's. `init` runs 15 barriers; after
/// each, every rank reads its clock, and a rank's offset from rank 0 is the median over the
/// rounds of the difference. A single barrier is not enough: on a busy machine one rank may
/// be descheduled right after it, for a scheduler tick or more. The timelines then line up to within the
/// typical barrier exit skew (microseconds on one node, about the network latency across
/// nodes); no clock synchronization between hosts is assumed.
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
        origin = try Self.commonOrigin(comm)
    }

    /// Rank 0's clock reading after the last of the rounds, on this rank's clock.
    static func commonOrigin(_ comm: Communicator, rounds: Int = 15) throws -> UInt64 {
        var readings = [Int64](repeating: 0, count: rounds)
        for k in 0..<rounds {
            var sync = [0.0]
            try comm.allreduceSum(&sync)
            readings[k] = Int64(bitPattern: now())
        }
        let all = try comm.gather(readings, counts: Array(repeating: rounds, count: comm.size), root: 0)
        // On rank 0: each rank's median offset (its clock minus rank 0's) and rank 0's last reading.
        var origins = [Int64](repeating: 0, count: comm.size)
        if comm.isRoot {
            for r in 0..<comm.size {
                let differences = (0..<rounds).map { all[r * rounds + $0] - all[$0] }.sorted()
                origins[r] = all[rounds - 1] + differences[rounds / 2]
            }
        }
        try origins.withUnsafeMutableBytes {
            guard let base = $0.baseAddress else { return }  // size ≥ 1 elements
            try comm.broadcast(base, bytes: $0.count, root: 0)
        }
        return UInt64(bitPattern: origins[comm.rank])
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
        // A span that began before the origin (a rank whose clock the median put slightly
        // ahead) starts at 0.
        events[count] = Event(span: span, step: span.isInsideStep ? step : -1, start: start > origin ? start - origin : 0, duration: now &- start)
        count += 1
    }

    /// Runs `body` inside a span.
    @inline(__always) public func span<R>(_ span: TraceSpan, _ body: () throws -> R) rethrows -> R {
        begin(span)
        defer { end() }
        return try body()
    }
}
