import AETrainCore
import AETrainMPI
import ArgumentParser
import CProcessControl
import Foundation

struct Bench: JobCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the training step against the GEMM floor (its five matrix products alone).",
        discussion: """
            Defaults are the sheet's real size: 13,233 synthetic examples of 37x28 = 1036 pixels, h = 400, batch 100. \
            The floor is the step's five products for the whole batch in one process with all of this node's cores, \
            measured in the same run (under mpirun by rank 0 while the other ranks sleep). --sweep adds batches \
            400 and 1600 and h = 1600. Also printed: each rank's peak RSS and the seconds from process start to the \
            first step.
            """)

    @Option(help: "Time on this data instead (a .npy file, an LFW tree, synthetic:N,H,W or 'embedded'); --examples and --image-shape then do not apply.")
    var data: String?
    @Option(name: .customLong("init"), help: "Time a trained model: the V.npy, W.npy, b.npy, a.npy in this directory (sets --hidden).")
    var initDirectory: String?
    @Option(help: "Examples in the synthetic dataset.") var examples: Int = 13233
    @Option(help: "Image shape HxW.") var imageShape: String = "37x28"
    @Option(help: "Hidden units h.") var hidden: Int = 400
    @Option(help: "Global batch size.") var batchSize: Int = 100
    @Option(name: .customLong("lambda"), help: "λ (the sheet's sparse model: 1).") var lambda: Double = 0
    @Option(help: "Timed steps.") var steps: Int = 300
    @Option(help: "Untimed steps first.") var warmup: Int = 30
    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).") var threads: Int?
    @Flag(help: "Batches 100, 400, 1600 × h 400, 1600 (ignores --batch-size and --hidden).") var sweep = false
    @Flag(help: "Print JSON instead of text.") var json = false
    @Flag(help: "Time the dense and the sparse kernels at activation densities from 0.5% to 40% (the bias set per unit to reach each), to show the crossover.")
    var sparsity = false
    @Option(parsing: .upToNextOption, help: "With --sparsity: the densities to time (default 0.005 0.01 0.02 0.05 0.1 0.2 0.4).")
    var densities: [Double] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    @Option(help: "Kernels for the step: auto, dense or sparse.") var kernels: KernelChoice = .auto
    @Option(help: "Overlap the decoder's allreduce with the encoder's backward pass: auto (across nodes), always or never.")
    var overlap: OverlapMode = .auto
    @Flag(help: "Time MPI allreduce of 1 KB to 16 MB: latency α (the smallest message) and ms per MB β (slope over 64 KB to 4 MB), for the scaling model.")
    var allreduce = false
    @OptionGroup var job: JobOptions

    func validate() throws {
        guard ImageShape(parsing: imageShape) != nil else { throw ValidationError("--image-shape must be HxW, got '\(imageShape)'") }
        for (v, flag) in [(examples, "--examples"), (hidden, "--hidden"), (batchSize, "--batch-size"), (steps, "--steps")] where v <= 0 {
            throw ValidationError("\(flag) must be positive, got \(v)")
        }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, got \(warmup)") }
        if initDirectory != nil, sweep || sparsity || allreduce {
            throw ValidationError("--init times one trained model; it does not combine with --sweep, --sparsity or --allreduce")
        }
        if densities.isEmpty || !densities.allSatisfy({ $0 > 0 && $0 <= 1 }) {
            throw ValidationError("--densities must be fractions in (0, 1], got \(densities)")
        }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
    }

    struct Result {
        var batch: Int, hidden: Int
        var stepMs: Double, optimizerMs: Double, communicationMs: Double, floorMs: Double
        var json: String {
            String(format: "{\"batch_size\": %d, \"hidden\": %d, \"ms_per_step\": %.4f, \"gemm_floor_ms\": %.4f, \"ratio\": %.3f, \"optimizer_ms\": %.4f, \"exposed_communication_ms\": %.4f}",
                   batch, hidden, stepMs, floorMs, stepMs / floorMs, optimizerMs, communicationMs)
        }
    }

    func run(comm: MPICommunicator) throws {
        if allreduce { return try runAllreduce(comm: comm) }
        let threadsPerRank = threads ?? Cores.perRank(comm)
        BLASThreads.set(threadsPerRank)
        Denormals.flushToZero()
        guard let syntheticShape = ImageShape(parsing: imageShape) else { return }
        let spec = SyntheticSpec(examples: examples, shape: syntheticShape)
        let source: DataSource = try data.map { try DataSource(argument: $0, seed: 0) } ?? .synthetic(spec, seed: 0)
        let shard = try DatasetShard.load(source, imageShape: nil, comm: comm)
        let shape = shard.info.imageShape
        let examples = shard.info.examples
        let initial = try initDirectory.map { dir in
            try comm.collectively { try ModelWeights.load(from: URL(fileURLWithPath: dir)) }
        }
        if sparsity { return try runSparsity(shard: shard, comm: comm, threadsPerRank: threadsPerRank) }
        let options = StepOptions(kernels: kernels, overlap: overlap.enabled(comm))
        let configs = sweep ? [(100, 400), (400, 400), (1600, 400), (100, 1600), (400, 1600), (1600, 1600)] : [(batchSize, initial?.shape.h ?? hidden)]
        var results: [Result] = []
        var startup = 0.0
        for (batch, h) in configs {
            var settings = TrainSettings()
            settings.hidden = h
            settings.batchSize = batch
            settings.objective = ObjectiveSettings(lambda: lambda)
            settings.iterations = warmup + steps
            let trainer = try comm.collectively {
                try SparseAutoencoder(shard: shard, settings: settings, comm: comm, initial: initial, options: options)
            }
            if results.isEmpty {
                _ = try trainer.evaluate()
                startup = ProcessClock.secondsSinceStart()
                trainer.update()
            }
            for _ in 0..<warmup { _ = try trainer.evaluate(); trainer.update() }
            var optimizerNs: UInt64 = 0
            _ = trainer.gradient.takeTimings()
            let stepMs = try medianOfBlocks(total: steps, comm: comm) {
                _ = try trainer.evaluate()
                let t0 = DispatchTime.now().uptimeNanoseconds
                trainer.update()
                optimizerNs += DispatchTime.now().uptimeNanoseconds - t0
            }
            let timed = Double(10 * max(1, steps / 10))
            let optimizerMs = Double(optimizerNs) / 1e6 / timed
            let communicationMs = trainer.gradient.takeTimings().communication * 1e3 / timed
            let floorMs = try floor(rows: batch, d: shape.pixels, h: h, comm: comm, threadsPerRank: threadsPerRank)
            results.append(Result(batch: batch, hidden: h, stepMs: stepMs, optimizerMs: optimizerMs, communicationMs: communicationMs, floorMs: floorMs))
        }
        let rss = try peakRSSPerRank(comm)
        guard comm.isRoot else { return }
        let rssText = rss.map { String(format: "%.1f", Double($0) / 1024) }
        if json {
            let common = "\"ranks\": \(comm.size), \"threads_per_rank\": \(threadsPerRank), \"examples\": \(examples), \"d\": \(shape.pixels), "
                + "\"lambda\": \(lambda), \"steps\": \(steps), \"peak_rss_mb_per_rank\": [\(rssText.joined(separator: ", "))], "
                + String(format: "\"seconds_to_first_step\": %.3f", startup)
            if let only = results.first, results.count == 1 {
                print(String(only.json.dropLast()) + ", " + common + "}")
            } else {
                print("{" + common + ", \"results\": [" + results.map(\.json).joined(separator: ", ") + "]}")
            }
            return
        }
        print("aetrain bench: \(examples) examples of \(shape) (d = \(shape.pixels), \(shard.info.source)), λ = \(lambda), "
              + (initDirectory.map { "weights from \($0), kernels \(kernels), " } ?? "")
              + "\(comm.size) rank(s) × \(threadsPerRank) BLAS thread(s); medians of 10 blocks of \(max(1, steps / 10)) steps")
        print("  batch  hidden   ms/step   GEMM floor   ratio   of which Adam   exposed communication")
        for r in results {
            print(String(format: "  %5d  %6d  %8.3f  %11.3f  %6.2f  %14.3f  %22.3f", r.batch, r.hidden, r.stepMs, r.floorMs, r.stepMs / r.floorMs,
                         r.optimizerMs, r.communicationMs))
        }
        print("  GEMM floor: the step's five products for the whole batch, 1 process × all \(ProcessClock.cores) cores")
        print("  peak RSS per rank: \(rssText.joined(separator: ", ")) MB; \(String(format: "%.2f", startup)) s from process start to the first step")
    }

    /// Step time on the dense and on the sparse kernels at set activation densities: the
    /// bias of each unit is set to the (1 − f) quantile of its pre-activation over a sample of
    /// the data, so that a fraction f of the activations is nonzero, spread over all units as
    /// in a trained sparse model.
    private func runSparsity(shard: DatasetShard, comm: MPICommunicator, threadsPerRank: Int) throws {
        let d = shard.d, h = hidden
        var rows: [(target: Double, measured: Double, dense: Double, sparse: Double)] = []
        for f in densities {
            var ms: [KernelChoice: Double] = [:]
            var measured = 0.0
            for path in [KernelChoice.dense, .sparse] {
                var settings = TrainSettings()
                settings.hidden = h
                settings.batchSize = batchSize
                settings.objective = ObjectiveSettings(lambda: lambda)
                settings.iterations = warmup + steps
                // Adam moves every weight by about the learning rate per step whatever the
                // gradient; a tiny rate keeps the density where it was set. Same cost per step.
                settings.adam.learningRate = 1e-8
                let trainer = try comm.collectively {
                    try SparseAutoencoder(shard: shard, settings: settings, comm: comm, options: StepOptions(kernels: path, overlap: overlap.enabled(comm)))
                }
                setBias(trainer.store, shard: shard, density: f)
                try comm.broadcast(trainer.store.b, bytes: h * MemoryLayout<Float>.stride, root: 0)  // rank 0's sample
                for _ in 0..<warmup { _ = try trainer.evaluate(); trainer.update() }
                var l0 = 0.0, n = 0
                ms[path] = try medianOfBlocks(total: steps, comm: comm) {
                    l0 += try trainer.evaluate().l0
                    n += 1
                    trainer.update()
                }
                measured = l0 / Double(max(1, n)) / Double(h)
            }
            rows.append((f, measured, ms[.dense] ?? .nan, ms[.sparse] ?? .nan))
        }
        let floorMs = try floor(rows: batchSize, d: d, h: h, comm: comm, threadsPerRank: threadsPerRank)
        guard comm.isRoot else { return }
        if json {
            let items = rows.map {
                String(format: "{\"density\": %.4f, \"measured_density\": %.4f, \"dense_ms\": %.4f, \"sparse_ms\": %.4f}", $0.target, $0.measured, $0.dense, $0.sparse)
            }
            print("{\"ranks\": \(comm.size), \"batch_size\": \(batchSize), \"hidden\": \(h), \"d\": \(d), "
                  + String(format: "\"gemm_floor_ms\": %.4f, ", floorMs) + "\"results\": [" + items.joined(separator: ", ") + "]}")
            return
        }
        print("aetrain bench --sparsity: batch \(batchSize), d = \(d), h = \(h), \(comm.size) rank(s) × \(threadsPerRank) BLAS thread(s); "
              + "ms per step (Adam included), medians of 10 blocks of \(max(1, steps / 10)) steps")
        print("  nonzero  (measured)   dense kernels   sparse kernels   sparse/dense   sparse/floor")
        for r in rows {
            print(String(format: "  %6.1f%%  (%6.2f%%)   %13.3f   %14.3f   %12.2f   %12.2f",
                         100 * r.target, 100 * r.measured, r.dense, r.sparse, r.sparse / r.dense, r.sparse / floorMs))
        }
        print(String(format: "  GEMM floor (five dense products, 1 process × all %d cores): %.3f ms", ProcessClock.cores, floorMs))
    }

    /// Sets b_j to minus the (1 − density) quantile of (X V)_:j over the first 1000 local rows.
    private func setBias(_ store: ParameterStore<Float>, shard: DatasetShard, density: Double) {
        let d = shard.d, h = store.layout.shape.h
        let n = min(1000, shard.rows.count)
        guard n > 0, let x = shard.values.baseAddress else { return }
        var p = [Float](repeating: 0, count: n * h)
        p.withUnsafeMutableBufferPointer {
            guard let pp = $0.baseAddress else { return }
            Float.gemm(transA: false, transB: false, m: n, n: h, k: d, alpha: 1, a: x, lda: d, b: store.V, ldb: h, beta: 0, c: pp, ldc: h)
        }
        let k = min(n - 1, Int((1 - density) * Double(n)))
        for j in 0..<h {
            let column = (0..<n).map { p[$0 * h + j] }.sorted()
            store.b[j] = -column[k]
        }
    }

    /// Allreduce times for float32 messages of growing size; a least-squares fit of
    /// T(bytes) = α + β·bytes over them.
    private func runAllreduce(comm: MPICommunicator) throws {
        let sizes = [256, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304]  // floats
        var buffer = [Float](repeating: 1, count: sizes.last ?? 1)
        var rows: [(bytes: Double, ms: Double)] = []
        for n in sizes {
            let reps = max(5, min(200, 20_000_000 / (n * 4)))
            var times: [Double] = []
            for _ in 0..<reps {
                var sync = [0.0]
                try comm.allreduceSum(&sync)
                let t0 = DispatchTime.now().uptimeNanoseconds
                try buffer.withUnsafeMutableBufferPointer { try comm.allreduceSum($0.baseAddress!, count: n) }  // non-empty
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            times.sort()
            var median = times[times.count / 2]
            try withUnsafeMutablePointer(to: &median) { try comm.allreduce($0, count: 1, kind: .float64, op: .max) }
            rows.append((Double(n * 4), median))
        }
        guard comm.isRoot else { return }
        // α: the smallest message; β: least-squares slope over 64 KB … 4 MB (the gradient buffer
        // of the sheet's model is 3.3 MB; beyond the caches the slope changes).
        let alpha = rows.first?.ms ?? 0
        let fit = rows.filter { $0.bytes >= 65536 && $0.bytes <= 4_194_304 }
        let k = Double(fit.count)
        let sx = fit.reduce(0) { $0 + $1.bytes }, sy = fit.reduce(0) { $0 + $1.ms }
        let sxx = fit.reduce(0) { $0 + $1.bytes * $1.bytes }, sxy = fit.reduce(0) { $0 + $1.bytes * $1.ms }
        let beta = (k * sxy - sx * sy) / (k * sxx - sx * sx)
        if json {
            print("{\"ranks\": \(comm.size), \"alpha_ms\": \(String(format: "%.5f", alpha)), \"ms_per_mb\": \(String(format: "%.4f", beta * 1e6)), "
                  + "\"points\": [" + rows.map { String(format: "[%.0f, %.5f]", $0.bytes, $0.ms) }.joined(separator: ", ") + "]}")
            return
        }
        print("aetrain bench --allreduce: \(comm.size) rank(s), float32 sum, median of repeated calls (the slowest rank's)")
        print("       bytes        ms   GB/s (algorithm)")
        for r in rows { print(String(format: "  %10.0f  %8.4f  %6.2f", r.bytes, r.ms, r.bytes / r.ms / 1e6)) }
        print(String(format: "  fit: T = %.4f ms + %.4f ms/MB × size", alpha, beta * 1e6))
    }

    /// The five products for the whole batch on rank 0 with all of the node's cores, the other
    /// ranks asleep in a barrier; restores this rank's thread count afterwards.
    private func floor(rows: Int, d: Int, h: Int, comm: MPICommunicator, threadsPerRank: Int) throws -> Double {
        try comm.idleBarrier()
        var ms = 0.0
        if comm.isRoot {
            _ = aet_affinity_widen()  // mpirun binds each rank to one core
            defer { aet_affinity_restore() }
            BLASThreads.set(ProcessClock.cores)
            let floor = GEMMFloor(rows: rows, d: d, h: h)
            for _ in 0..<max(3, warmup / 3) { floor.run() }
            ms = try medianOfBlocks(total: steps, comm: SingleProcess()) { floor.run() }
            BLASThreads.set(threadsPerRank)
        }
        try comm.idleBarrier(allowing: Double(steps + warmup))  // ranks > 0 wait for the floor's runs: 1 s each allowed
        return ms
    }

    private func peakRSSPerRank(_ comm: Communicator) throws -> [Int] {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let mine = [Int64(usage.ru_maxrss)]  // KiB
        var all = [Int64](repeating: 0, count: comm.isRoot ? comm.size : 0)
        try mine.withUnsafeBytes { send in
            try all.withUnsafeMutableBytes { receive in
                try comm.gather(send, into: receive.baseAddress, counts: Array(repeating: 8, count: comm.size), root: 0)
            }
        }
        return all.map(Int.init)
    }

    /// Runs `body` `total` times in 10 blocks; returns the median block's ms per call, the
    /// slowest rank's (ranks synchronize at each block's end).
    private func medianOfBlocks(total: Int, comm: Communicator, _ body: () throws -> Void) throws -> Double {
        let blocks = 10, per = max(1, total / blocks)
        var times: [Double] = []
        for _ in 0..<blocks {
            var sync: [Double] = [0]
            try comm.allreduceSum(&sync)
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<per { try body() }
            var ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(per)
            try withUnsafeMutablePointer(to: &ms) { try comm.allreduce($0, count: 1, kind: .float64, op: .max) }
            times.append(ms)
        }
        times.sort()
        return (times[blocks / 2 - 1] + times[blocks / 2]) / 2
    }
}

enum ProcessClock {
    static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Seconds since this process started (from /proc/self/stat and /proc/uptime).
    static func secondsSinceStart() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let uptime = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8))?.split(separator: " ").first.flatMap({ Double($0) })
        else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return .nan }
        return uptime - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The training step's five matrix products with its shapes, on random data.
final class GEMMFloor {
    let rows: Int, d: Int, h: Int
    private let x, v, z, w, g, gz, dV, dW: UnsafeMutableBufferPointer<Float>

    init(rows: Int, d: Int, h: Int) {
        self.rows = rows; self.d = d; self.h = h
        func buffer(_ n: Int) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            var rng = Xoshiro256(seed: UInt64(n))
            for i in 0..<n { b[i] = Float(rng.normal()) * 0.1 }
            return b
        }
        x = buffer(rows * d); v = buffer(d * h); z = buffer(rows * h); w = buffer(h * d)
        g = buffer(rows * d); gz = buffer(rows * h); dV = buffer(d * h); dW = buffer(h * d)
    }

    deinit { for b in [x, v, z, w, g, gz, dV, dW] { b.deallocate() } }

    func run() {
        guard let x = x.baseAddress, let v = v.baseAddress, let z = z.baseAddress, let w = w.baseAddress,
              let g = g.baseAddress, let gz = gz.baseAddress, let dV = dV.baseAddress, let dW = dW.baseAddress
        else { return }
        let m = rows
        Float.gemm(transA: false, transB: false, m: m, n: h, k: d, alpha: 1, a: x, lda: d, b: v, ldb: h, beta: 0, c: z, ldc: h)   // P = X V
        Float.gemm(transA: false, transB: false, m: m, n: d, k: h, alpha: 1, a: z, lda: h, b: w, ldb: d, beta: 0, c: g, ldc: d)   // X̂ = Z W
        Float.gemm(transA: true, transB: false, m: h, n: d, k: m, alpha: 1, a: z, lda: h, b: g, ldb: d, beta: 0, c: dW, ldc: d)   // dW = Zᵀ G
        Float.gemm(transA: false, transB: true, m: m, n: h, k: d, alpha: 1, a: g, lda: d, b: w, ldb: d, beta: 0, c: gz, ldc: h)   // G_Z = G Wᵀ
        Float.gemm(transA: true, transB: false, m: d, n: h, k: m, alpha: 1, a: x, lda: d, b: gz, ldb: h, beta: 0, c: dV, ldc: h)  // dV = Xᵀ G_P
    }
}
