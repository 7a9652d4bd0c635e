/// AuxK (topk, batchtopk): the dead latents (`LatentActivity`) learn to reconstruct what the
/// live ones miss.
///
///     e_i  = x_i − x̂_i                        (d)   no gradient through e
///     ê_i  = Σ_{j ∈ S_i} relu(π_ij) W_j         (d)   S_i: TopK_{k_aux} of relu(π_i) on the dead latents; no bias
///     AuxK = mean_i ‖e_i − ê_i‖² / mean_i ‖x_i − x̄‖²
///     loss = rec + c·AuxK
///
/// With ga_i = ê_i − e_i = ê_i + R_i (R = x̂ − x) and S = Σ_i ‖x_i − x̄‖² over the global batch:
///
///     ∂(c·AuxK)/∂ê_i = (2c/S)·ga_i =: Ga_i
///     dW_j  += relu(π_ij)·Ga_i                  for j ∈ S_i
///     G_P_ij += Ga_i · W_j                       for j ∈ S_i (relu(π_ij) > 0 there)
///
/// S comes from the column-sums reduction, which carries Σ_i (x_i − a) and Σ_i ‖x_i − a‖²
/// (`centredSums`): S = Σ‖x_i − a‖² − ‖Σ(x_i − a)‖²/m. Measuring about the decoder bias a
/// (the same on every rank, near the data's mean once trained) keeps the subtraction from
/// cancelling when the data are not centred.
enum AuxK {
    /// S_i for rows `rows` of `pre` (mr, h) into their slots of `aux` (k_aux entries each;
    /// `aux.pack` after all rows), among `dead`. heapUnits, heapValues: (k_aux) scratch.
    @_specialize(where T == Float)
    static func selectRows<T: BLASScalar>(_ rows: Range<Int>, aux: ActiveUnits<T>, pre: UnsafePointer<T>, dead: UnsafePointer<Bool>,
                                          kAux: Int, h: Int, heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<T>) {
        for i in rows {
            let (units, values) = aux.slot(ofRow: i, room: kAux)
            aux.setCount(TopK.select(pre + i * h, h: h, k: kAux, allowed: dead, heapUnits: heapUnits, heapValues: heapValues,
                                     units: units, values: values), ofRow: i)
        }
    }

    /// ga_i = R_i + ê_i into `ga` (mr, d) for rows `rows`, from the unscaled residual `r`
    /// (Σ_i ‖ga_i‖² afterwards, over all rows).
    @_specialize(where T == Float)
    static func forwardRows<T: BLASScalar>(_ rows: Range<Int>, ga: UnsafeMutablePointer<T>, aux: ActiveUnits<T>, r: UnsafePointer<T>,
                                           W: UnsafePointer<T>, d: Int) {
        for i in rows {
            (ga + i * d).update(from: r + i * d, count: d)
            for e in aux.entries(ofRow: i) { T.axpy(d, aux.value[e], W + Int(aux.unit[e]) * d, ga + i * d) }
        }
    }

    /// Σ_i (x_i − a) into `sums` (d) and Σ_i ‖x_i − a‖² into `sums[d]` (added).
    @_specialize(where T == Float)
    static func centredSums<T: BLASScalar>(_ sums: UnsafeMutablePointer<T>, x: UnsafePointer<T>, a: UnsafePointer<T>, mr: Int, d: Int) {
        var squares: T = 0
        for i in 0..<mr {
            let xi = x + i * d
            for k in 0..<d {
                let u = xi[k] - a[k]
                sums[k] += u
                squares += u * u
            }
        }
        sums[d] += squares
    }

    /// S = Σ‖x_i − a‖² − ‖Σ(x_i − a)‖²/m from the reduced `centredSums`, in double.
    static func totalVariance<T: BLASScalar>(_ sums: UnsafePointer<T>, m: Int, d: Int) -> Double {
        var norm = 0.0
        for k in 0..<d { norm += Double(sums[k]) * Double(sums[k]) }
        return max(0, Double(sums[d]) - norm / Double(m))
    }
}
