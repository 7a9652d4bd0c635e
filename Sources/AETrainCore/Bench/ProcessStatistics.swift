import Foundation

/// What the benchmark reports about the processes themselves.
public enum ProcessStatistics {
    /// This node's online cores.
    public static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Seconds since this process started (from /proc/self/stat and /proc/uptime); NaN where
    /// /proc does not tell.
    public static func secondsSinceStart() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let uptime = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8))?.split(separator: " ").first.flatMap({ Double($0) })
        else { return .nan }
        // Field 22 of stat (starttime, in clock ticks since boot) is the 20th after the ")".
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return .nan }
        return uptime - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The 1-minute load average (/proc/loadavg; NaN where it does not tell): how busy the
    /// machine was while it was measured.
    public static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first, let value = Double(first) else { return .nan }
        return value
    }

    /// Each rank's peak resident set in KiB, in rank order on rank 0 (empty elsewhere).
    public static func peakRSSPerRank(_ comm: Communicator) throws -> [Int] {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let mine = [Int64(usage.ru_maxrss)]  // KiB on Linux
        return try comm.gather(mine, counts: Array(repeating: 1, count: comm.size), root: 0).map(Int.init)
    }
}
