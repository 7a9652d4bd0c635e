import CKernels
import Foundation

/// The training step's dense products in bf16 (`Precision.bf16`): each operand rounded to
/// bfloat16 (nearest even) as it is packed into the kernel's panels, the products summed in
/// float32 by `vdpbf16ps` (CKernels/bf16_gemm.c).
///
/// The weights are packed once per step, after Adam moved them: V as X V's right operand
/// (`packWeights`, at the step's start), W as Z W's and W as G Wᵀ's (transposed) by the first
/// product that reads them, so that a step on the sparse kernels, whose only dense product is
/// X V, packs W not at all. The activations (G for dW = Zᵀ G, G_P for dV = Xᵀ G_P) are packed
/// by the product that reads them.
///
/// A product runs either on all of `loop`'s threads (the fast step: each thread packs and
/// computes its own panels of C's columns, so no thread waits for another; or, where A is
/// the larger operand, its own rows of C, B packed first), or on one worker's buffers (the
/// deterministic step's chunks, several at once). Neither changes a bit: the kernel sums every
/// element of C in one fixed order, whatever the columns, rows and threads (`bf16_gemm.h`), so
/// `--deterministic` stays the same bits on 1, 2 and 4 ranks. BLAS then runs on one thread
/// (`ChunkSchedule.singleThreadedBLAS`), so that its idle threads never spin beside these.
///
/// Shapes: rows = the step's largest chunk, d and h the model's.
final class BF16Products: WorkerJob {
    /// A weight matrix as a product reads it, packed once per step.
    enum Weight: Int {
        /// V (d, h): the right operand of π = X V.
        case encoder
        /// W (h, d): the right operand of X̂ = Z W.
        case decoder
        /// Wᵀ (d, h): the right operand of G_Z = G Wᵀ.
        case decoderTransposed
    }

    let loop: ParallelLoop
    /// Columns of one packed panel: a thread's columns start on a multiple of it.
    let panel = Int(aet_bf16_panel_width())
    private let d: Int, h: Int
    /// Holds every buffer below; made once.
    private let arena: Arena
    private let weights: [UnsafeMutablePointer<UInt16>]  // by `Weight`: packed_b_count(d, h), (h, d), (d, h)
    private let packedB: [UnsafeMutablePointer<UInt16>]  // (max(workers, 1)) an activation operand: the threads' shared one is [0]
    private let panels: [UnsafeMutablePointer<UInt16>]   // (max(workers, threads)) each thread's panels of A

    // The product in flight on the loop (`work`).
    private var call = Call()
    private struct Call {
        var packed: UnsafePointer<UInt16>?
        var transA = false, transB = false
        var m = 0, n = 0, k = 0
        var alpha: Float = 1, beta: Float = 0
        /// Not a product: the threads pack V (`encoder`) or W and Wᵀ (`decoder`).
        var pack: Weight?
        var a: UnsafePointer<Float>?, b: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>?
        var lda = 0, ldb = 0, ldc = 0
        var columns = 0..<0
        /// The threads split the rows of C (B packed before), not its columns.
        var byRows = false
    }
    private var weightSources: (V: UnsafePointer<Float>, W: UnsafePointer<Float>)?
    /// W and Wᵀ are packed for this step; `decoderLock` guards it where several chunk workers
    /// may reach their first decoder product at once.
    private var decoderPacked = false
    private let decoderLock = NSLock()

    /// - rows: the most rows of X a product reads (a chunk's); the backward's products, whose
    ///   right operands are activations of that many rows, only with `activations`.
    /// - workers: callers that may run products at once on their own buffers (the
    ///   deterministic step's chunk workers).
    init(d: Int, h: Int, rows: Int, workers: Int, loop: ParallelLoop, activations: Bool = true) {
        self.d = d; self.h = h; self.loop = loop
        let threads = max(workers, loop.count)
        // The five products' (m, n, k): the panels of A each thread needs for the largest.
        let shapes = [(rows, h, d), (rows, d, h)] + (activations ? [(h, d, rows), (d, h, rows)] : [])
        let panelCount = shapes.map { Int(aet_bf16_packed_scratch_count($0.0, $0.1, $0.2)) }.max() ?? 0
        let weightCounts = [Int(aet_bf16_packed_b_count(d, h)), Int(aet_bf16_packed_b_count(h, d)), Int(aet_bf16_packed_b_count(d, h))]
        let activationCount = activations ? max(Int(aet_bf16_packed_b_count(rows, d)), Int(aet_bf16_packed_b_count(rows, h))) : 1
        var size = Arena.Size()
        for n in weightCounts { size.add(UInt16.self, n) }
        for _ in 0..<max(workers, 1) { size.add(UInt16.self, activationCount) }
        for _ in 0..<threads { size.add(UInt16.self, panelCount) }
        arena = Arena(size)
        weights = weightCounts.map { [arena] in arena.take(UInt16.self, $0) }
        packedB = (0..<max(workers, 1)).map { [arena] _ in arena.take(UInt16.self, activationCount) }
        panels = (0..<threads).map { [arena] _ in arena.take(UInt16.self, panelCount) }
    }

    /// A new step's V (d, h), packed now on all of the loop's threads, and W (h, d), packed by the
    /// first product that reads it.
    func packWeights(V: UnsafePointer<Float>, W: UnsafePointer<Float>) {
        weightSources = (V, W)
        decoderPacked = false
        call = Call()
        call.pack = .encoder
        loop.run(self)
        call = Call()
    }

    /// W and Wᵀ packed for this step, once: on all of the loop's threads, or (`worker`: a chunk
    /// worker, while the loop runs the chunks) on the caller's, under the lock.
    private func packDecoder(worker: Int?) {
        guard worker != nil else {
            guard !decoderPacked else { return }
            call = Call()
            call.pack = .decoder
            loop.run(self)
            call = Call()
            decoderPacked = true
            return
        }
        decoderLock.lock()
        defer { decoderLock.unlock() }
        guard !decoderPacked, let (_, W) = weightSources else { return }
        aet_bf16_pack_b(0, h, d, W, d, weights[Weight.decoder.rawValue])
        aet_bf16_pack_b(1, d, h, W, d, weights[Weight.decoderTransposed.rawValue])
        decoderPacked = true
    }

    /// C = alpha·op(A)·op(B) + beta·C (row-major, as `BLASScalar.gemm`) in bf16. With `weight`,
    /// B is that weight as packed by `packWeights` (b, ldb and transB are not read again), and
    /// only C's `columns` are computed (nil: all). `worker`: compute on this caller's thread
    /// with its buffers; nil: on all of the loop's threads.
    func gemm(_ weight: Weight?, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
              alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, columns: Range<Int>? = nil, worker: Int?) {
        guard m > 0, n > 0 else { return }
        let columns = columns ?? 0..<n
        if let weight, weight != .encoder { packDecoder(worker: worker) }
        if let worker {
            let packed: UnsafePointer<UInt16>
            if let weight {
                packed = UnsafePointer(weights[weight.rawValue])
            } else {
                aet_bf16_pack_b_range(transB ? 1 : 0, k, n, b, ldb, packedB[worker], columns.lowerBound, columns.upperBound)
                packed = UnsafePointer(packedB[worker])
            }
            aet_bf16_gemm_packed(transA ? 1 : 0, m, n, k, alpha, a, lda, packed, columns.lowerBound, columns.upperBound,
                                 beta, c, ldc, panels[worker])
            return
        }
        call = Call(packed: weight.map { UnsafePointer(weights[$0.rawValue]) }, transA: transA, transB: transB,
                    m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, columns: columns)
        // A taller than B is wide (Z W, Zᵀ G at the SAE shape): the threads take rows, so that
        // each packs only its rows of A; B is packed whole first, here.
        if m > columns.count, loop.count > 1 {
            call.byRows = true
            if weight == nil {
                aet_bf16_pack_b_range(transB ? 1 : 0, k, n, b, ldb, packedB[0], columns.lowerBound, columns.upperBound)
                call.packed = UnsafePointer(packedB[0])
            }
        }
        loop.run(self)
        call = Call()
    }

    /// Thread w's panels of `columns`: whole packed panels, in contiguous runs.
    private func part(_ columns: Range<Int>, worker w: Int) -> Range<Int> {
        let first = columns.lowerBound / panel, last = (columns.upperBound + panel - 1) / panel
        let share: Range<Int> = loop.part(of: last - first, worker: w)
        let lo = max(columns.lowerBound, (first + share.lowerBound) * panel)
        let hi = min(columns.upperBound, (first + share.upperBound) * panel)
        return lo..<max(lo, hi)
    }

    func work(_ w: Int) {
        if let pack = call.pack, let (V, W) = weightSources {
            // Each thread its panels of each weight.
            let v = part(0..<h, worker: w), wd = part(0..<d, worker: w)
            if pack == .encoder {
                if !v.isEmpty { aet_bf16_pack_b_range(0, d, h, V, h, weights[Weight.encoder.rawValue], v.lowerBound, v.upperBound) }
                return
            }
            if !v.isEmpty { aet_bf16_pack_b_range(1, d, h, W, d, weights[Weight.decoderTransposed.rawValue], v.lowerBound, v.upperBound) }
            if !wd.isEmpty { aet_bf16_pack_b_range(0, h, d, W, d, weights[Weight.decoder.rawValue], wd.lowerBound, wd.upperBound) }
            return
        }
        guard let a = call.a, let c = call.c else { return }
        if call.byRows, let packed = call.packed {
            // Whole tiles of the kernel's 8 rows (any split gives the same bits; this one no ragged tile).
            let tiles = (call.m + 7) / 8, share = loop.part(of: tiles, worker: w)
            let rows = min(call.m, share.lowerBound * 8)..<min(call.m, share.upperBound * 8)
            guard !rows.isEmpty else { return }
            let aPart = call.transA ? a + rows.lowerBound : a + rows.lowerBound * call.lda
            aet_bf16_gemm_packed(call.transA ? 1 : 0, rows.count, call.n, call.k, call.alpha, aPart, call.lda, packed,
                                 call.columns.lowerBound, call.columns.upperBound, call.beta, c + rows.lowerBound * call.ldc, call.ldc, panels[w])
            return
        }
        let columns = part(call.columns, worker: w)
        guard !columns.isEmpty else { return }
        let packed: UnsafePointer<UInt16>
        if let p = call.packed {
            packed = p
        } else {
            guard let b = call.b else { return }
            aet_bf16_pack_b_range(call.transB ? 1 : 0, call.k, call.n, b, call.ldb, packedB[0], columns.lowerBound, columns.upperBound)
            packed = UnsafePointer(packedB[0])
        }
        aet_bf16_gemm_packed(call.transA ? 1 : 0, call.m, call.n, call.k, call.alpha, a, call.lda, packed,
                             columns.lowerBound, columns.upperBound, call.beta, c, call.ldc, panels[w])
    }
}

/// How a kernel's dense products run: OpenBLAS in the scalar type (`blas`), or bf16 on one
/// worker's buffers or on all of the step's threads (`BF16Products`). A worker index names
/// buffers of `BF16Products.init`'s `workers` callers for any B, or of its threads for the
/// packed weights (`ChunkKernels`' X V, split by its threads).
public struct Products<T: BLASScalar> {
    let bf16: BF16Products?
    let worker: Int?

    /// The scalar type's BLAS (fp32, or fp64 in the gradient checks).
    public static var blas: Products { Products(bf16: nil, worker: nil) }

    /// `T.gemm`, or its bf16 form where the step runs in bf16; `weight` names B when it is one
    /// of the packed weights, `columns` limits C's columns (nil: all).
    @inline(__always)
    func gemm(_ weight: BF16Products.Weight? = nil, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
              alpha: T, a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
              beta: T, c: UnsafeMutablePointer<T>, ldc: Int, columns: Range<Int>? = nil) {
        guard let bf16, T.self == Float.self else {
            let lo = columns?.lowerBound ?? 0, width = columns?.count ?? n
            T.gemm(transA: transA, transB: transB, m: m, n: width, k: k, alpha: alpha, a: a, lda: lda,
                   b: transB ? b + lo * ldb : b + lo, ldb: ldb, beta: beta, c: c + lo, ldc: ldc)
            return
        }
        func float(_ p: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
        bf16.gemm(weight, transA: transA, transB: transB, m: m, n: n, k: k, alpha: Float(alpha), a: float(a), lda: lda,
                  b: float(b), ldb: ldb, beta: Float(beta), c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self),
                  ldc: ldc, columns: columns, worker: worker)
    }
}
