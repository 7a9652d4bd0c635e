import Dispatch

/// How the benchmarks time a loop: blocks, medians, the slowest rank.
public enum BlockTiming {
    public static let blocks = 10

    /// Runs `body` `total` times in 10 blocks; returns the median block's ms per call, the
    /// slowest rank's (ranks synchronize at each block's start and agree at its end).
    /// The median of 10 is the mean of the 5th and 6th smallest.
    public static func medianOfBlocks(total: Int, comm: Communicator, _ body: () throws -> Void) throws -> Double {
        let per = max(1, total / blocks)
        var times: [Double] = []
        for _ in 0..<blocks {
            var sync: [Double] = [0]
            try comm.allreduceSum(&sync)
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<per { try body() }
            times.append(try slowest(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(per), comm: comm))
        }
        times.sort()
        return (times[blocks / 2 - 1] + times[blocks / 2]) / 2
    }

    /// The largest `value` over the ranks, on every rank.
    static func slowest(_ value: Double, comm: Communicator) throws -> Double {
        var v = value
        try comm.allreduce(&v, count: 1, kind: .float64, op: .max)
        return v
    }
}
