import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct Bench: RankCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the training step against the GEMM floor (its five matrix products alone).",
        discussion: """
            Defaults are the sheet's real size: 13,233 synthetic examples of 37x28 = 1036 pixels, h = 400, batch 100.
            The floor is measured in the same process with the same BLAS threads: with one rank, the five \
            products for the whole batch; under mpirun, every rank at once for its share of the batch.
            """)

    @Option(help: "Examples in the synthetic dataset.") var examples: Int = 13233
    @Option(help: "Image shape HxW.") var imageShape: String = "37x28"
    @Option(help: "Hidden units h.") var hidden: Int = 400
    @Option(help: "Global batch size.") var batchSize: Int = 100
    @Option(name: .customLong("lambda"), help: "λ (the sheet's sparse model: 1).") var lambda: Double = 0
    @Option(help: "Timed steps.") var steps: Int = 300
    @Option(help: "Untimed steps first.") var warmup: Int = 30
    @Option(help: "BLAS threads per rank (default: this node's cores / ranks on this node).") var threads: Int?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard ImageShape(parsing: imageShape) != nil else { throw ValidationError("--image-shape must be HxW, got '\(imageShape)'") }
        for (v, flag) in [(examples, "--examples"), (hidden, "--hidden"), (batchSize, "--batch-size"), (steps, "--steps")] where v <= 0 {
            throw ValidationError("\(flag) must be positive, got \(v)")
        }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, got \(warmup)") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
    }

    func run(comm: MPICommunicator) throws {
        let threadsPerRank = threads ?? Cores.perRank(comm)
        BLASThreads.set(threadsPerRank)
        guard let shape = ImageShape(parsing: imageShape) else { return }
        let spec = SyntheticSpec(examples: examples, shape: shape)
        let shard = try DatasetShard.load(.synthetic(spec, seed: 0), imageShape: nil, comm: comm)
        var settings = TrainSettings()
        settings.hidden = hidden
        settings.batchSize = batchSize
        settings.objective = ObjectiveSettings(lambda: lambda)
        settings.iterations = warmup + steps
        let trainer = try comm.collectively { try Trainer(shard: shard, settings: settings, comm: comm) }

        for _ in 0..<warmup { _ = try trainer.evaluate(); trainer.update() }
        var optimizerNs: UInt64 = 0
        let stepMs = try medianOfBlocks(total: steps, comm: comm) {
            _ = try trainer.evaluate()
            let t0 = DispatchTime.now().uptimeNanoseconds
            trainer.update()
            optimizerNs += DispatchTime.now().uptimeNanoseconds - t0
        }
        let optimizerMs = Double(optimizerNs) / 1e6 / Double(10 * max(1, steps / 10))

        // The floor: the step's five products, for this rank's share of the batch.
        let rows = comm.size == 1 ? batchSize : (batchSize + comm.size - 1) / comm.size
        let floor = GEMMFloor(rows: rows, d: shape.pixels, h: hidden)
        for _ in 0..<max(3, warmup / 3) { floor.run() }
        let floorMs = try medianOfBlocks(total: steps, comm: comm) { floor.run() }

        guard comm.isRoot else { return }
        let ratio = stepMs / floorMs
        if json {
            let fields: [(String, String)] = [
                ("ms_per_step", String(format: "%.4f", stepMs)), ("gemm_floor_ms", String(format: "%.4f", floorMs)),
                ("ratio", String(format: "%.3f", ratio)), ("optimizer_ms", String(format: "%.4f", optimizerMs)), ("ranks", "\(comm.size)"), ("threads_per_rank", "\(threadsPerRank)"),
                ("examples", "\(examples)"), ("d", "\(shape.pixels)"), ("hidden", "\(hidden)"),
                ("batch_size", "\(batchSize)"), ("floor_rows_per_rank", "\(rows)"), ("lambda", "\(lambda)"), ("steps", "\(steps)"),
            ]
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            print("aetrain bench: \(examples) examples of \(shape) (d = \(shape.pixels)), h = \(hidden), batch \(batchSize), "
                  + "λ = \(lambda), \(comm.size) rank(s) × \(threadsPerRank) BLAS thread(s)")
            print(String(format: "  training step  %8.3f ms  (median of 10 blocks of %d steps)", stepMs, max(1, steps / 10)))
            print(String(format: "  GEMM floor     %8.3f ms  (the five products, %d rows per rank)", floorMs, rows))
            print(String(format: "  of which Adam  %8.3f ms  (mean)", optimizerMs))
            print(String(format: "  ratio          %8.2f", ratio))
        }
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
