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
    /// above the minimum kept one, and that value's units up to the minimum's index.
    @_specialize(where T == Float)
    public static func select<T: BLASScalar>(_ row: UnsafePointer<T>, h: Int, k: Int, allowed: UnsafePointer<Bool>?,
                                      heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<T>,
                                      units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<T>) -> Int {
        guard k > 0 else { return 0 }
        var n = 0
        // Once the heap is full, a unit must beat its minimum (> 0): one compare for most units.
        var floor: T = 0
        for j in 0..<h {
            let v = row[j]
            guard v > floor else { continue }
            if let allowed, !allowed[j] { continue }
            if n < k {
                heapPush(heapUnits, heapValues, count: n, unit: Int32(j), value: v)
                n += 1
                if n == k { floor = heapValues[0] }
            } else {
                heapReplaceMinimum(heapUnits, heapValues, count: k, unit: Int32(j), value: v)
                floor = heapValues[0]
            }
        }
        guard n > 0 else { return 0 }
        // The kept set in ascending unit order: above the minimum, or equal to it up to its index.
        let (minValue, minUnit) = n < k ? (T(0), Int32(h)) : (heapValues[0], heapUnits[0])
        var out = 0
        for j in 0..<h {
            let v = row[j]
            guard v >= minValue, v > 0 else { continue }
            if v == minValue && Int32(j) > minUnit { continue }
            if let allowed, !allowed[j] { continue }
            units[out] = Int32(j); values[out] = v
            out += 1
        }
        return out
    }

    /// a leaves the heap before b: a lower value, or the same value and a higher unit.
    @inline(__always)
    private static func before<T: BLASScalar>(_ units: UnsafeMutablePointer<Int32>, _ values: UnsafeMutablePointer<T>, _ a: Int, _ b: Int) -> Bool {
        values[a] < values[b] || (values[a] == values[b] && units[a] > units[b])
    }

    @inline(__always)
    private static func swapAt<T: BLASScalar>(_ units: UnsafeMutablePointer<Int32>, _ values: UnsafeMutablePointer<T>, _ a: Int, _ b: Int) {
        let (u, v) = (units[a], values[a])
        units[a] = units[b]; values[a] = values[b]
        units[b] = u; values[b] = v
    }

    @inline(__always)
    private static func heapPush<T: BLASScalar>(_ units: UnsafeMutablePointer<Int32>, _ values: UnsafeMutablePointer<T>, count: Int,
                                                unit: Int32, value: T) {
        units[count] = unit; values[count] = value
        var c = count
        while c > 0, before(units, values, c, (c - 1) / 2) { swapAt(units, values, c, (c - 1) / 2); c = (c - 1) / 2 }
    }

    @inline(__always)
    private static func heapReplaceMinimum<T: BLASScalar>(_ units: UnsafeMutablePointer<Int32>, _ values: UnsafeMutablePointer<T>,
                                                          count k: Int, unit: Int32, value: T) {
        units[0] = unit; values[0] = value
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var least = p
            if l < k, before(units, values, l, least) { least = l }
            if r < k, before(units, values, r, least) { least = r }
            if least == p { break }
            swapAt(units, values, p, least)
            p = least
        }
    }

    /// Encoder forward: π = X V + 1 bᵀ into `pre`, z = TopK_k(relu(π)) into `z` and `active`,
    /// Σ_i z_ij added to `columnSums` (h) in row order. Returns the number of kept entries.
    ///
    /// - z, pre: (mr, h) outputs. - x: (mr, d), V: (d, h), b: (h).
    /// - heap: (2k) scratch: units (k Int32) then values.
    @_specialize(where T == Float)
    static func encoderForward<T: BLASScalar>(
        z: UnsafeMutablePointer<T>, pre: UnsafeMutablePointer<T>, active: ActiveUnits<T>, columnSums: UnsafeMutablePointer<T>,
        heapUnits: UnsafeMutablePointer<Int32>, heapValues: UnsafeMutablePointer<T>,
        x: UnsafePointer<T>, V: UnsafePointer<T>, b: UnsafePointer<T>, k: Int, mr: Int, d: Int, h: Int
    ) -> T {
        Objective.encoderProduct(pre: pre, x: x, V: V, b: b, mr: mr, d: d, h: h)
        z.update(repeating: 0, count: mr * h)
        active.reset()
        for i in 0..<mr {
            let zi = z + i * h
            active.appendRow(room: k) { units, values in
                let n = select(pre + i * h, h: h, k: k, allowed: nil, heapUnits: heapUnits, heapValues: heapValues,
                               units: units, values: values)
                for e in 0..<n {
                    let j = Int(units[e])
                    zi[j] = values[e]
                    columnSums[j] += values[e]
                }
                return n
            }
        }
        return T(active.count)
    }
}

extension Objective {
    /// π = X V + 1 bᵀ (the new architectures keep π: AuxK and JumpReLU read it).
    ///
    /// - pre: (mr, h) output. - x: (mr, d), V: (d, h), b: (h).
    static func encoderProduct<T: BLASScalar>(pre: UnsafeMutablePointer<T>, x: UnsafePointer<T>, V: UnsafePointer<T>,
                                              b: UnsafePointer<T>, mr: Int, d: Int, h: Int) {
        guard mr > 0 else { return }
        T.gemm(transA: false, transB: false, m: mr, n: h, k: d, alpha: 1, a: x, lda: d, b: V, ldb: h, beta: 0, c: pre, ldc: h)
        for i in 0..<mr {
            let row = pre + i * h
            for j in 0..<h { row[j] += b[j] }
        }
    }
}
