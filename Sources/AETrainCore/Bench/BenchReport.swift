import Foundation

/// What a benchmark measured, as the text table `aetrain bench` prints and as JSON
/// (`--json`, through `JSONEncoder`). Numbers are rounded as the table prints them.
public protocol BenchReport: Encodable {
    /// The lines of the text table.
    func text() -> [String]
}

extension BenchReport {
    /// One line of JSON, keys sorted.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// `value` rounded to `places` decimals, as `%.<places>f` prints it.
func rounded(_ value: Double, _ places: Int) -> Double {
    guard value.isFinite else { return value }
    let scale = pow(10, Double(places))
    return (value * scale).rounded() / scale
}

/// The training step against the GEMM floor, at one shape or at each shape of the sweep.
public struct StepReport: BenchReport {
    /// One timed shape. All times are ms per step, medians of blocks, the slowest rank's.
    public struct Shape: Encodable, Sendable {
        public var batch: Int, hidden: Int
        /// The whole step: evaluate (forward, backward, allreduce) and the Adam update.
        public var stepMs: Double
        /// The Adam update alone.
        public var optimizerMs: Double
        /// Time waiting on communication that computation did not hide.
        public var communicationMs: Double
        /// The five products of the whole batch in one process (`GEMMFloor`).
        public var floorMs: Double
        /// Under mpirun: the same step in one process (rank 0 alone, all cores); nil in one process.
        public var singleProcessMs: Double?
        public var ratio: Double { stepMs / floorMs }
        public var singleProcessRatio: Double? { singleProcessMs.map { $0 / floorMs } }

        enum CodingKeys: String, CodingKey {
            case batch = "batch_size", hidden, stepMs = "ms_per_step", floorMs = "gemm_floor_ms", ratio
            case optimizerMs = "optimizer_ms", communicationMs = "exposed_communication_ms"
            case singleProcessMs = "one_process_ms_per_step", singleProcessRatio = "one_process_ratio"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(batch, forKey: .batch)
            try c.encode(hidden, forKey: .hidden)
            try c.encode(rounded(stepMs, 4), forKey: .stepMs)
            try c.encode(rounded(floorMs, 4), forKey: .floorMs)
            try c.encode(rounded(ratio, 3), forKey: .ratio)
            try c.encode(rounded(optimizerMs, 4), forKey: .optimizerMs)
            try c.encode(rounded(communicationMs, 4), forKey: .communicationMs)
            if let singleProcessMs, let singleProcessRatio {
                try c.encode(rounded(singleProcessMs, 4), forKey: .singleProcessMs)
                try c.encode(rounded(singleProcessRatio, 3), forKey: .singleProcessRatio)
            }
        }
    }

    public var ranks: Int
    public var threadsPerRank: Int
    public var cores: Int
    public var examples: Int
    public var dimensions: Int
    public var imageShape: ImageShape?
    /// The data's description (`DatasetInfo.source`).
    public var source: String
    public var lambda: Double
    public var steps: Int
    public var stepsPerBlock: Int
    /// Set when a trained model was timed: its directory and the kernels asked for.
    public var initDirectory: String?
    public var kernels: KernelChoice
    /// Whether the step overlapped its allreduce (`--overlap` as resolved on every rank).
    public var overlap: Bool
    public var shapes: [Shape]
    /// Each rank's peak resident set, KiB, in rank order.
    public var peakRSSKiB: [Int]
    /// Seconds from process start to the end of the first step's evaluation.
    public var secondsToFirstStep: Double
    /// The 1-minute load average when the benchmark started and when it ended.
    public var loadAverage: [Double] = []
    /// The deterministic step was timed (`StepOptions.deterministic`).
    public var deterministic = false
    /// The ranks summed the gradient in shared memory (`StepOptions.sharedMemory`), not by allreduce.
    public var sharedMemory = false
    /// The activation timed, as "topk, k = 32"; nil: relu (the sheet's).
    public var activation: String?
    /// What computed the step's dense products (`Precision`).
    public var precision: Precision = .fp32

    var peakRSSMB: [Double] { peakRSSKiB.map { Double($0) / 1024 } }

    enum CodingKeys: String, CodingKey {
        case ranks, threadsPerRank = "threads_per_rank", examples, d, lambda, steps, overlap
        case peakRSS = "peak_rss_mb_per_rank", secondsToFirstStep = "seconds_to_first_step", results, deterministic
        case loadAverage = "load_average"
        case gradientSum = "gradient_sum"
        case activation, precision, products
    }

    /// One shape: its keys beside the run's; a sweep: the run's keys and `results`.
    public func encode(to encoder: Encoder) throws {
        if shapes.count == 1, let only = shapes.first { try only.encode(to: encoder) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ranks, forKey: .ranks)
        try c.encode(threadsPerRank, forKey: .threadsPerRank)
        try c.encode(examples, forKey: .examples)
        try c.encode(dimensions, forKey: .d)
        try c.encode(lambda, forKey: .lambda)
        try c.encode(steps, forKey: .steps)
        try c.encode(overlap, forKey: .overlap)
        try c.encode(peakRSSMB.map { rounded($0, 1) }, forKey: .peakRSS)
        try c.encode(rounded(secondsToFirstStep, 3), forKey: .secondsToFirstStep)
        try c.encode(loadAverage.map { rounded($0, 2) }, forKey: .loadAverage)
        try c.encode(deterministic, forKey: .deterministic)
        try c.encode(ranks == 1 ? "none" : sharedMemory ? "shared-memory" : "allreduce", forKey: .gradientSum)
        try c.encodeIfPresent(activation, forKey: .activation)
        try c.encode(precision, forKey: .precision)
        try c.encode(precision.kernelDescription, forKey: .products)
        if shapes.count != 1 { try c.encode(shapes, forKey: .results) }
    }

    public func text() -> [String] {
        var lines = ["aetrain bench: \(examples) examples of \(imageShape.map { "\($0) (d = \(dimensions)" } ?? "d = \(dimensions) (vectors"), \(source)), \(activation.map { $0 + ", " } ?? "")λ = \(lambda), "
                     + (initDirectory.map { "weights from \($0), kernels \(kernels), " } ?? "")
                     + (deterministic ? "deterministic step, " : "")
                     + "\(ranks) rank(s) × \(threadsPerRank) BLAS thread(s)" + (ranks > 1 ? ", gradient sum by \(sharedMemory ? "shared memory" : "allreduce"), overlap \(overlap ? "on" : "off")" : "")
                     + "; medians of 10 blocks of \(stepsPerBlock) steps"]
        let alone = shapes.contains { $0.singleProcessMs != nil }
        lines.append("  batch  hidden   ms/step   GEMM floor   ratio   of which Adam   exposed communication"
                     + (alone ? "   1 process: ms/step   ratio" : ""))
        for r in shapes {
            var line = String(format: "  %5d  %6d  %8.3f  %11.3f  %6.2f  %14.3f  %22.3f", r.batch, r.hidden, r.stepMs, r.floorMs, r.ratio,
                              r.optimizerMs, r.communicationMs)
            if let ms = r.singleProcessMs, let ratio = r.singleProcessRatio { line += String(format: "  %19.3f  %6.2f", ms, ratio) }
            lines.append(line)
        }
        lines.append("  step: \(precision.kernelDescription); GEMM floor: the step's five products in fp32 (OpenBLAS sgemm) for the whole batch, 1 process × all \(cores) cores")
        if alone { lines.append("  1 process: the same step timed by rank 0 alone with all \(cores) cores, on the whole dataset, while the other ranks sleep") }
        lines.append("  load average (1 min) at start and end: " + loadAverage.map { String(format: "%.2f", $0) }.joined(separator: ", "))
        lines.append("  peak RSS per rank: \(peakRSSMB.map { String(format: "%.1f", $0) }.joined(separator: ", ")) MB; "
                     + "\(String(format: "%.2f", secondsToFirstStep)) s from process start to the first step")
        return lines
    }
}

/// The dense and the sparse kernels at set activation densities (`SparsityBenchmark`).
public struct SparsityReport: BenchReport {
    /// One density. Times are ms per step, Adam included.
    public struct Row: Encodable, Sendable {
        /// The fraction of activations the bias was set to make nonzero, and the fraction
        /// that was, averaged over the timed steps of the sparse kernels.
        public var density: Double, measuredDensity: Double
        public var denseMs: Double, sparseMs: Double

        enum CodingKeys: String, CodingKey {
            case density, measuredDensity = "measured_density", denseMs = "dense_ms", sparseMs = "sparse_ms"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(rounded(density, 4), forKey: .density)
            try c.encode(rounded(measuredDensity, 4), forKey: .measuredDensity)
            try c.encode(rounded(denseMs, 4), forKey: .denseMs)
            try c.encode(rounded(sparseMs, 4), forKey: .sparseMs)
        }
    }

    public var ranks: Int
    public var threadsPerRank: Int
    public var cores: Int
    public var batchSize: Int, hidden: Int, d: Int
    public var stepsPerBlock: Int
    public var floorMs: Double
    public var rows: [Row]

    enum CodingKeys: String, CodingKey {
        case ranks, batchSize = "batch_size", hidden, d, floorMs = "gemm_floor_ms", rows = "results"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ranks, forKey: .ranks)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(d, forKey: .d)
        try c.encode(rounded(floorMs, 4), forKey: .floorMs)
        try c.encode(rows, forKey: .rows)
    }

    public func text() -> [String] {
        var lines = ["aetrain bench --sparsity: batch \(batchSize), d = \(d), h = \(hidden), \(ranks) rank(s) × \(threadsPerRank) BLAS thread(s); "
                     + "ms per step (Adam included), medians of 10 blocks of \(stepsPerBlock) steps"]
        lines.append("  nonzero  (measured)   dense kernels   sparse kernels   sparse/dense   sparse/floor")
        for r in rows {
            lines.append(String(format: "  %6.1f%%  (%6.2f%%)   %13.3f   %14.3f   %12.2f   %12.2f",
                                100 * r.density, 100 * r.measuredDensity, r.denseMs, r.sparseMs, r.sparseMs / r.denseMs, r.sparseMs / floorMs))
        }
        lines.append(String(format: "  GEMM floor (five dense products, 1 process × all %d cores): %.3f ms", cores, floorMs))
        return lines
    }
}

/// Allreduce times by message size and the fit T(bytes) = α + β·bytes (`AllreduceBenchmark`).
public struct AllreduceReport: BenchReport {
    /// One message size: its bytes and the median ms per call, the slowest rank's.
    public struct Point: Sendable {
        /// The median call's time and the fastest call's, ms (each the slowest rank's).
        public var bytes: Double, ms: Double, fastestMs: Double
    }

    public var ranks: Int
    /// Latency: the smallest message's time, ms (median call).
    public var alphaMs: Double
    /// Least-squares slope over 64 KB … 4 MB, ms per byte (median call).
    public var betaMsPerByte: Double
    /// The same two from the fastest call of each size.
    public var fastestAlphaMs: Double
    public var fastestBetaMsPerByte: Double
    public var points: [Point]

    enum CodingKeys: String, CodingKey {
        case ranks, alphaMs = "alpha_ms", msPerMB = "ms_per_mb", points
        case fastestAlphaMs = "fastest_alpha_ms", fastestMsPerMB = "fastest_ms_per_mb", fastestPoints = "fastest_points"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ranks, forKey: .ranks)
        try c.encode(rounded(alphaMs, 5), forKey: .alphaMs)
        try c.encode(rounded(betaMsPerByte * 1e6, 4), forKey: .msPerMB)
        try c.encode(points.map { [rounded($0.bytes, 0), rounded($0.ms, 5)] }, forKey: .points)
        try c.encode(rounded(fastestAlphaMs, 5), forKey: .fastestAlphaMs)
        try c.encode(rounded(fastestBetaMsPerByte * 1e6, 4), forKey: .fastestMsPerMB)
        try c.encode(points.map { [rounded($0.bytes, 0), rounded($0.fastestMs, 5)] }, forKey: .fastestPoints)
    }

    public func text() -> [String] {
        var lines = ["aetrain bench --allreduce: \(ranks) rank(s), float32 sum, median and fastest of repeated calls (the slowest rank's)"]
        lines.append("       bytes    median ms   GB/s    fastest ms   GB/s")
        for r in points {
            lines.append(String(format: "  %10.0f  %11.4f  %5.2f  %12.4f  %5.2f", r.bytes, r.ms, r.bytes / r.ms / 1e6, r.fastestMs, r.bytes / r.fastestMs / 1e6))
        }
        lines.append(String(format: "  fit: T = %.4f ms + %.4f ms/MB × size (median); %.4f ms + %.4f ms/MB × size (fastest)",
                            alphaMs, betaMsPerByte * 1e6, fastestAlphaMs, fastestBetaMsPerByte * 1e6))
        return lines
    }
}
