import Dispatch

/// Allreduce times for float32 messages of 1 KB to 16 MB, and a least-squares fit of
/// T(bytes) = α + β·bytes over them: the scaling model's latency and bandwidth. Each size is
/// called repeatedly; the fit is made twice, on the median call (what a step sees on this
/// machine) and on the fastest call (what the transport can do when nothing else runs: on a
/// shared, loaded machine the median mostly measures the other processes).
public enum AllreduceBenchmark {
    /// Message sizes in floats.
    public static let sizes = [256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304]

    /// Times every size on every rank; the report on rank 0, nil elsewhere.
    public static func run(comm: Communicator) throws -> AllreduceReport? {
        var buffer = [Float](repeating: 1, count: sizes.last ?? 1)
        var points: [AllreduceReport.Point] = []
        for n in sizes {
            let reps = max(5, min(200, 20_000_000 / (n * 4)))
            var times: [Double] = []
            for _ in 0..<reps {
                var sync = [0.0]
                try comm.allreduceSum(&sync)
                let t0 = DispatchTime.now().uptimeNanoseconds
                try buffer.withUnsafeMutableBufferPointer {
                    guard let base = $0.baseAddress else { return }  // sizes.last elements ≥ n
                    try comm.allreduceSum(base, count: n)
                }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            times.sort()
            points.append(AllreduceReport.Point(bytes: Double(n * 4), ms: try BlockTiming.slowest(times[times.count / 2], comm: comm),
                                                fastestMs: try BlockTiming.slowest(times[0], comm: comm)))
        }
        guard comm.isRoot else { return nil }
        let median = fit(points.map { ($0.bytes, $0.ms) }), fastest = fit(points.map { ($0.bytes, $0.fastestMs) })
        return AllreduceReport(ranks: comm.size, alphaMs: median.alpha, betaMsPerByte: median.beta,
                               fastestAlphaMs: fastest.alpha, fastestBetaMsPerByte: fastest.beta, points: points)
    }

    /// α: the smallest message; β: least-squares slope over 64 KB … 4 MB (the gradient buffer
    /// of the sheet's model is 3.3 MB; beyond the caches the slope changes).
    static func fit(_ points: [(bytes: Double, ms: Double)]) -> (alpha: Double, beta: Double) {
        let alpha = points.first?.ms ?? 0
        let fit = points.filter { $0.bytes >= 65536 && $0.bytes <= 4_194_304 }
        let k = Double(fit.count)
        let sx = fit.reduce(0) { $0 + $1.bytes }, sy = fit.reduce(0) { $0 + $1.ms }
        let sxx = fit.reduce(0) { $0 + $1.bytes * $1.bytes }, sxy = fit.reduce(0) { $0 + $1.bytes * $1.ms }
        return (alpha, (k * sxy - sx * sy) / (k * sxx - sx * sx))
    }
}
