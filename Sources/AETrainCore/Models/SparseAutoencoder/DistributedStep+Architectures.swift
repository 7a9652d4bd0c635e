/// The phases of `DistributedStep` that topk, batchtopk and jumprelu take in relu's place
/// (the outline is `DistributedStep`'s):
///
///  1  π = X V + b kept; z = TopK_k(relu(π)) (topk, straight into the sparse buffers),
///     π·H(π − θ) (jumprelu), or nothing yet (batchtopk); Σ_i (x_i − a) and Σ_i ‖x_i − a‖²
///     beside the column sums (AuxK's denominator)
///  1b batchtopk: the selection of the k·m largest over the global batch (`BatchTopKSelection`)
///  3  the dead latents from the reduced column sums (`LatentActivity`), AuxK's scale 2c/S,
///     the kernels' choice
///  4  residual R; AuxK's S_i, ê and ê − e; ‖R‖² and ‖ê − e‖² into the reduced sums; G = (2/m)R
///  5–6 the backward (`Objective+Architectures.swift`)
extension DistributedStep {
    /// The slot after relu's reduced terms that AuxK's Σ‖ê − e‖² rides in.
    var hasAuxSlot: Bool { store.reducedSlots > ArchitectureTerm.auxSquaredError.slot }

    /// θ's offset in the flat buffer (jumprelu), nil otherwise.
    var thresholdOffset: Int? {
        architecture?.activation == .jumprelu ? store.layout.tensors.first { $0.name == "threshold" }?.range.lowerBound : nil
    }

    /// Step 1 for local chunk i on worker w.
    func architectureForward(_ i: Int, x: UnsafePointer<T>, worker w: Int) {
        guard let architecture else { return }
        let (d, h) = (shape.d, shape.h)
        let c = chunks[i], mr = chunkRows[i], s = store
        let sums = columnSums + i * sumStride
        sums.update(repeating: 0, count: sumCount)
        switch architecture.activation {
        case .topk:
            // π = 1 bᵀ + X V (its own span when this thread records), then the selection; the
            // rows of both shared by the kernel threads.
            let trace = schedule.workers == 1 ? clock.trace : nil
            trace?.begin(.encoderProduct)
            kernels.run(.encoderProduct, chunk: i, rows: mr, x: x, heap: heapBase(worker: w))
            trace?.end()
            kernels.run(.topk, chunk: i, rows: mr, x: x, heap: heapBase(worker: w))
            chunkActive[i] = TopK.finishForward(active: c.active, columnSums: sums, k: architecture.k, mr: mr)
        case .jumprelu:
            chunkActive[i] = JumpReLU.encoderForward(z: c.z, pre: c.pre, columnSums: sums, x: x, V: s.V, b: s.b,
                                                     theta: s.params + (thresholdOffset ?? 0), mr: mr, d: d, h: h,
                                                     products: products(worker: w))
        case .batchtopk, .relu:
            Objective.encoderProduct(pre: c.pre, x: x, V: s.V, b: s.b, mr: mr, d: d, h: h, products: products(worker: w))
            chunkActive[i] = 0
        }
        sums[h] = chunkActive[i]
        AuxK.centredSums(sums + h + 1, x: x, a: s.a, mr: mr, d: d)
    }

    /// Step 1b (batchtopk): the k·m largest entries of relu(π) over the global batch, every
    /// chunk's Z and column sums from them; the running threshold.
    func selectOverTheBatch(m: Int) throws {
        guard let selection = batchTopK, let k = architecture?.k else { return }
        let h = shape.h
        let smallest = try selection.select(
            pre: chunkPre, z: chunkZ, columnSums: chunkColumnSums, rows: chunkRows, h: h, keep: k * m,
            firstChunk: cut.localChunks.lowerBound, sumCounts: { try reduction.sumCounts($0, count: $1) })
        for i in 0..<chunks.count {
            chunkActive[i] = T(selection.kept[i])
            columnSums[i * sumStride + h] = chunkActive[i]
        }
        FixedOrder.tree(columnSums, count: sumCount, stride: sumStride, chunks: chunks.count)
        selection.updateThreshold(smallest: smallest, step: store.adamSteps)
    }

    /// Step 3: the dead latents (before this batch) and the counters moved on; AuxK's scale;
    /// whether the step takes the sparse kernels.
    func latentStatistics(m: Int) -> Bool {
        let (d, h) = (shape.d, shape.h)
        latents?.record(columnSums: columnSums)
        totalVariance = AuxK.totalVariance(columnSums + h + 1, m: m, d: d)
        let c = architecture?.auxCoef ?? 0
        auxScale = totalVariance > 0 ? T(2 * c / totalVariance) : 0
        return useSparse(activeCount: Double(columnSums[h]), rows: m)
    }

    /// Steps 4–6 for local chunk i into its partial gradient.
    func architectureBackward(_ i: Int, x: UnsafePointer<T>, m: Int, sparse wanted: Bool, worker w: Int, traced: Bool) throws {
        guard let architecture else { return }
        let (d, h) = (shape.d, shape.h)
        let c = chunks[i], mr = chunkRows[i], layout = store.layout
        let p = c.partial, W = store.W
        let dV = p + layout.V.lowerBound, dW = p + layout.W.lowerBound
        let db = p + layout.b.lowerBound, da = p + layout.a.lowerBound
        func span(_ s: TraceSpan) -> TraceSpan? { traced ? s : nil }

        // 4: the residual over Z's entries (topk's are in place already; its dense Z is made
        // here if the dense kernels want it), then AuxK.
        let sparse: Bool = switch architecture.activation {
        case .topk: wanted
        case .jumprelu: wanted && c.active.gatherNonzero(z: c.z, mr: mr, h: h)
        default: wanted && c.active.gather(z: c.z, mr: mr, h: h)
        }
        if architecture.activation == .topk && !sparse { c.active.scatter(into: c.z, h: h) }
        chunkSparse[i] = sparse
        let heap = heapBase(worker: w)
        let withAux = kAux > 0 && (latents?.deadCount ?? 0) > 0
        var auxSSE: T = 0
        let (sse, l1) = clock.compute(span(.decoderForward)) { () -> (T, T) in
            let (sse, l1): (T, T)
            if sparse {
                kernels.run(.residual, chunk: i, rows: mr, x: x, heap: heap)
                (sse, l1) = Objective.residualSums(g: c.g, active: c.active, mr: mr, d: d)
            } else {
                (sse, l1) = Objective.residual(g: c.g, z: c.z, x: x, W: W, a: store.a, mr: mr, d: d, h: h, products: products(worker: w))
            }
            if withAux {
                kernels.run(.auxSelect, chunk: i, rows: mr, x: x, heap: heap)
                c.aux.pack(rows: mr, room: kAux)
                kernels.run(.auxForward, chunk: i, rows: mr, x: x, heap: heap)
                auxSSE = mr > 0 ? T.dot(mr * d, c.ga, c.ga) : 0
                if mr > 0 { T.scal(mr * d, auxScale, c.ga) }   // Ga = (2c/S)(ê − e)
            }
            if mr > 0 { T.scal(mr * d, 2 / T(m), c.g) }        // G = (2/m) R
            return (sse, l1)
        }
        // 5–6
        let jump = thresholdOffset.map { offset in
            Objective.JumpTerms(dTheta: p + offset, pre: UnsafePointer(c.pre), theta: store.params + offset,
                                bandwidth: T(architecture.bandwidth), l0Gradient: T(settings.lambda) / T(m))
        }
        let aux = withAux ? c.aux : nil, ga = withAux ? UnsafePointer(c.ga) : nil
        clock.compute(span(.encoderBackward)) {
            if sparse {
                c.columns.build(from: c.active)
                if withAux { c.auxColumns.build(from: c.aux) }
                kernels.run(.backward, chunk: i, rows: mr, x: x, heap: heap, withAux: withAux)
                Objective.sparseBackwardRest(da: da, g: c.g, W: W, jump: jump, mr: mr, d: d, h: h)
            } else {
                Objective.architectureBackward(dV: dV, db: db, dW: dW, da: da, gz: c.gz, g: c.g, z: c.z, x: x, W: W,
                                               aux: aux, ga: ga, jump: jump, mr: mr, d: d, h: h, products: products(worker: w))
            }
        }
        if traced { try reduction.decoderGradientComplete() }
        let sums = p + layout.count
        sums[ReducedTerm.squaredError.rawValue] = sse
        sums[ReducedTerm.activationSum.rawValue] = l1
        sums[ReducedTerm.activeCount.rawValue] = chunkActive[i]
        sums[ReducedTerm.squaredNorm.rawValue] = mr > 0 ? T.dot(mr * d, x, x) : 0
        sums[ReducedTerm.stopRequest.rawValue] = 0
        if hasAuxSlot { sums[ArchitectureTerm.auxSquaredError.slot] = auxSSE }
    }
}

/// Reduced slots after `ReducedTerm`'s that the new architectures add (the store is made
/// with `reducedSlots(for:)` of them).
public enum ArchitectureTerm: Int, CaseIterable {
    /// Σ_i ‖ê_i − e_i‖² (AuxK) over this rank's part of the batch.
    case auxSquaredError

    public var slot: Int { ReducedTerm.allCases.count + rawValue }

    /// The store's reduced slots for an architecture: relu's alone for relu (nil).
    public static func reducedSlots(for architecture: ArchitectureSettings?) -> Int {
        ReducedTerm.allCases.count + (architecture == nil ? 0 : allCases.count)
    }
}
