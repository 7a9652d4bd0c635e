/// The passes inside one chunk that a rank's threads share in the fast step
/// (`DistributedStep.kernelLoop`): π = 1 bᵀ + X V by rows, TopK's and AuxK's selections and ê by row, the sparse
/// residual by row, the sparse backward by unit. Made once per step; each pass sets what it
/// works on and runs on the loop, every thread taking its part (`ParallelLoop.part`), and
/// leaves what needs one thread (packing, sums in row order) to its caller.
final class ChunkKernels<T: BLASScalar>: WorkerJob {
    enum Pass { case none, encoderProduct, topk, auxSelect, residual, auxForward, backward }

    unowned let step: DistributedStep<T>
    private var pass = Pass.none
    private var chunk = 0, rows = 0, heap = 0
    private var x: UnsafePointer<T>?
    private var withAux = false

    init(step: DistributedStep<T>) { self.step = step }

    /// Runs `pass` over chunk i's `rows` rows (x: its batch rows), with the heaps and blocks
    /// from `heap` on: on the step's kernel threads, or (one of them, as in the deterministic
    /// step, whose chunks share this object's step from several threads) on the caller.
    ///
    /// The threads' products (`encoderProduct`) run on one BLAS thread each
    /// (`ChunkSchedule.singleThreadedBLAS`).
    func run(_ pass: Pass, chunk i: Int, rows: Int, x: UnsafePointer<T>, heap: Int, withAux: Bool = false) {
        guard step.kernelLoop.count > 1 else {
            Self.perform(pass, step: step, chunk: i, rows: rows, x: x, heap: heap, withAux: withAux, worker: 0)
            return
        }
        self.pass = pass; chunk = i; self.rows = rows; self.x = x; self.heap = heap; self.withAux = withAux
        step.kernelLoop.run(self)
        self.pass = .none; self.x = nil
    }

    @_specialize(where T == Float)
    func work(_ w: Int) {
        guard let x else { return }
        Self.perform(pass, step: step, chunk: chunk, rows: rows, x: x, heap: heap, withAux: withAux, worker: w)
    }

    /// Thread w's part of `pass`.
    @_specialize(where T == Float)
    static func perform(_ pass: Pass, step s: DistributedStep<T>, chunk: Int, rows: Int, x: UnsafePointer<T>, heap: Int, withAux: Bool,
                        worker w: Int) {
        let loop = s.kernelLoop, c = s.chunks[chunk], store = s.store
        let (d, h) = (s.shape.d, s.shape.h), part = loop.part(of: rows, worker: w)
        let (hu, hv) = (s.heapUnits[heap + w], s.heapValues[heap + w])
        switch pass {
        case .none: break
        case .encoderProduct:
            // π's columns in parts of whole cache lines (each thread packs only its columns of
            // V), set to b and then added X V to (β = 1): no pass of π += b over the whole
            // (mr, h), and none of BLAS's zeroing π for β = 0.
            // In bf16, parts of whole packed panels of V.
            let line = s.bf16?.panel ?? 64 / MemoryLayout<T>.stride, lines = (h + line - 1) / line
            let columns = min(h, loop.part(of: lines, worker: w).lowerBound * line)..<min(h, loop.part(of: lines, worker: w).upperBound * line)
            guard rows > 0, !columns.isEmpty else { return }
            for i in 0..<rows { (c.pre + i * h + columns.lowerBound).update(from: store.b + columns.lowerBound, count: columns.count) }
            Products(bf16: s.bf16, worker: heap + w).gemm(.encoder, transA: false, transB: false, m: rows, n: h, k: d, alpha: 1, a: x, lda: d,
                                                          b: store.V, ldb: h, beta: 1, c: c.pre, ldc: h, columns: columns)
        case .topk:
            TopK.selectRows(part, pre: c.pre, active: c.active, k: s.architecture?.k ?? 0, h: h, heapUnits: hu, heapValues: hv)
        case .auxSelect:
            guard let dead = s.latents?.dead else { return }
            AuxK.selectRows(part, aux: c.aux, pre: c.pre, dead: dead, kAux: s.kAux, h: h, heapUnits: hu, heapValues: hv)
        case .residual:
            Objective.sparseResidualRows(part, g: c.g, active: c.active, x: x, W: store.W, a: store.a, d: d)
        case .auxForward:
            AuxK.forwardRows(part, ga: c.ga, aux: c.aux, r: c.g, W: store.W, d: d)
        case .backward:
            let layout = store.layout, p = c.partial
            let units = c.columns.firstUnit(ofPart: w, parts: loop.count, align: Objective.sparseBlock)
                ..< c.columns.firstUnit(ofPart: w + 1, parts: loop.count, align: Objective.sparseBlock)
            Objective.sparseBackwardUnits(units, dV: p + layout.V.lowerBound, db: p + layout.b.lowerBound, dW: p + layout.W.lowerBound,
                                          buffer: s.dVtBlocks[heap + w], columns: c.columns, auxColumns: withAux ? c.auxColumns : nil,
                                          g: c.g, x: x, W: store.W, ga: withAux ? UnsafePointer(c.ga) : nil, d: d, h: h)
        }
    }
}
