import Foundation

/// Writes every rank's `TraceRecorder` into one Chrome trace-event file (the "traceEvents"
/// JSON that Perfetto and chrome://tracing open): one process per rank (pid = rank, named
/// "rank r"), one thread (tid 0), complete events ("ph": "X") with ts and dur in µs from the
/// common origin, the step's index in args.
public enum TraceFile {
    /// Throws on rank 0 when `url` cannot be written (`WritablePlace.checkFile`).
    public static func checkWritable(_ url: URL, comm: Communicator) throws {
        guard comm.isRoot else { return }
        try WritablePlace.checkFile(url, setting: "trace")
    }

    /// Collective: rank 0 gathers the ranks' events and writes `url` (through `DurableFile`).
    public static func write(_ recorder: TraceRecorder, to url: URL, comm: Communicator) throws {
        // Each event as four Int64: span, step, start ns, duration ns.
        var mine = [Int64](repeating: 0, count: 4 * recorder.count)
        for i in 0..<recorder.count {
            let e = recorder.events[i]
            mine[4 * i] = Int64(e.span.rawValue); mine[4 * i + 1] = Int64(e.step)
            mine[4 * i + 2] = Int64(e.start); mine[4 * i + 3] = Int64(e.duration)
        }
        var counts = [Double](repeating: 0, count: comm.size)
        counts[comm.rank] = Double(mine.count)
        try comm.allreduceSum(&counts)
        var dropped = [Double(recorder.dropped)]
        try comm.allreduceSum(&dropped)
        let all = try comm.gather(mine, counts: counts.map { Int($0) }, root: 0)
        try comm.collectively {
            guard comm.isRoot else { return }
            let json = render(all, counts: counts.map { Int($0) / 4 }, maxSteps: recorder.maxSteps, dropped: Int(dropped[0]))
            try DurableFile.write(Data(json.utf8), to: url)
        }
    }

    /// The JSON text of the gathered events (`counts[r]` events of rank r, in rank order).
    static func render(_ all: [Int64], counts: [Int], maxSteps: Int, dropped: Int) -> String {
        var out = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":\"CLOCK_MONOTONIC of each rank, shifted to rank 0 by the median offset over 15 barriers\","
        out += "\"steps_recorded_per_rank\":\(maxSteps),\"events_dropped\":\(dropped)},\n\"traceEvents\":[\n"
        var first = true
        func line(_ s: String) {
            if !first { out += ",\n" }
            out += s
            first = false
        }
        for rank in counts.indices {
            line("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"rank \(rank)\"}}")
            line("{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":0,\"args\":{\"sort_index\":\(rank)}}")
            line("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"training thread\"}}")
        }
        var base = 0
        for (rank, n) in counts.enumerated() {
            for i in 0..<n {
                let e = all[(base + i) * 4 ..< (base + i + 1) * 4].map { $0 }
                guard let span = TraceSpan(rawValue: UInt8(truncatingIfNeeded: e[0])) else { continue }
                let args = e[1] >= 0 ? ",\"args\":{\"step\":\(e[1])}" : ""
                line("{\"name\":\"\(span.name)\",\"cat\":\"\(span.category)\",\"ph\":\"X\",\"pid\":\(rank),\"tid\":0,"
                     + "\"ts\":\(microseconds(e[2])),\"dur\":\(microseconds(e[3]))\(args)}")
            }
            base += n
        }
        out += "\n]}\n"
        return out
    }

    /// ns as µs with three decimals (exact: no floating point).
    static func microseconds(_ ns: Int64) -> String {
        let whole = ns / 1000, frac = ns % 1000
        return "\(whole)." + String(repeating: "0", count: frac < 10 ? 2 : frac < 100 ? 1 : 0) + "\(frac)"
    }
}
