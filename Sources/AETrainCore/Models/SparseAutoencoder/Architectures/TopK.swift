/// TopK: z = TopK_k(relu(π)) per example, π = xV + b. The k largest entries of relu(π) are
/// kept, ties broken by the lower unit index, the rest zeroed; the gradient flows through
/// the kept entries only (∂z_ij/∂π_ij = 1 where z_ij > 0, else 0: a kept entry of relu(π) = 0
/// adds nothing forward and has relu's derivative 0).
///
/// The kept entries go straight into the chunk's `ActiveUnits` (k per row at most), so the
/// decoder and the backward pass run over them without a gather (`Objective+Sparse.swift`).
public enum TopK {
    /// The (at most) k largest positive entries of `row` (h), ties to the lower index, among
    /// the units where `allowed` is true (nil: all), written to `units`/`values` in ascending
    /// unit order. Returns how many. `heapUnits`, `heapValues`: scratch (k).
    ///
    /// A min-heap of the k best so far under (value, then the higher index first out); a unit
    /// enters when its value beats the heap's minimum (scanning in ascending order, an equal
    /// value never does: the earlier unit wins the tie). The kept set is then every value
    /// above the minimum kept one, and that value's units up to the minimum's index. The loop
    /// is C (CKernels/topk.c), which skips blocks of 16 entries below the minimum with one
    /// vector compare.
    public static func select<T: BLASScalar>(_ row: UnsafePointer<T>, h: Int, k: Int, allowed: UnsafePointer<Bool>?,
                                             heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<T>,
                                             units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<T>) -> Int {
        T.topk(row, allowed: allowed, h: h, k: k,
               heapUnits: heapUnits, heapValues: heapValues, units: units, values: values)
    }

    /// Encoder forward, rows `rows` of a chunk whose π = X V + 1 bᵀ is in `pre` (mr, h):
    /// z = TopK_k(relu(π)) of each row into its slot of `active` (k entries; `finishForward`
    /// packs them). The fast step's threads each take a part of the rows.
    ///
    /// - heapUnits, heapValues: (k) scratch of this thread.
    @_specialize(where T == Float)
    static func selectRows<T: BLASScalar>(_ rows: Range<Int>, pre: UnsafePointer<T>, active: ActiveUnits<T>,
                                          k: Int, h: Int, heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<T>) {
        for i in rows {
            let (units, values) = active.slot(ofRow: i, room: k)
            active.setCount(T.topk(pre + i * h, allowed: nil, h: h, k: k, heapUnits: heapUnits, heapValues: heapValues,
                                   units: units, values: values), ofRow: i)
        }
    }

    /// After `selectRows` over all mr rows: the rows packed (the dense Z is not written:
    /// `ActiveUnits.scatter` makes it if the dense kernels want it), Σ_i z_ij added to
    /// `columnSums` (h) in row order. Returns the number of kept entries.
    static func finishForward<T: BLASScalar>(active: ActiveUnits<T>, columnSums: UnsafeMutablePointer<T>, k: Int, mr: Int) -> T {
        active.pack(rows: mr, room: k)
        for e in 0..<active.count { columnSums[Int(active.unit[e])] += active.value[e] }
        return T(active.count)
    }
}

extension Objective {
    /// π = X V + 1 bᵀ (the new architectures keep π: AuxK and JumpReLU read it).
    ///
    /// - pre: (mr, h) output. - x: (mr, d), V: (d, h), b: (h).
    static func encoderProduct<T: BLASScalar>(pre: UnsafeMutablePointer<T>, x: UnsafePointer<T>, V: UnsafePointer<T>,
                                              b: UnsafePointer<T>, mr: Int, d: Int, h: Int, products: Products<T> = .blas) {
        guard mr > 0 else { return }
        products.gemm(.encoder, transA: false, transB: false, m: mr, n: h, k: d, alpha: 1, a: x, lda: d, b: V, ldb: h, beta: 0, c: pre, ldc: h)
        for i in 0..<mr {
            let row = pre + i * h
            for j in 0..<h { row[j] += b[j] }
        }
    }
}
