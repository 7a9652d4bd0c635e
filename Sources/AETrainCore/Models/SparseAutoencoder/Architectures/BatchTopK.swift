/// BatchTopK: over the global batch of m examples (all ranks together), keep the k·m largest
/// entries of relu(π) and zero the rest. No rank holds the whole batch, so the selection is
/// distributed; it is exactly the one a single process makes, whatever the rank count.
///
/// Order of the entries (the tie rule): by value, larger first; among equal values, by the
/// example's position in the global batch (the sampler's order), lower first; then by unit
/// index, lower first. A rank's chunks are contiguous positions of the batch, in order, and
/// a chunk's rows are in batch order, so row-major order inside the chunks in chunk order is
/// that order.
///
/// The selection (a radix select on the values' bit patterns, which order positive floats as
/// the values do): 8 bits at a time from the top, each rank counts its positive entries that
/// share the prefix found so far in 256 bins, the counts are summed over the ranks
/// (`GradientReduction.sumCounts`: integers in float64, exact in any order), and every rank
/// picks the same bin. After 32 bits (64 for float64) every rank knows v*, the smallest kept
/// value, and how many entries equal to v* are kept. When not all of them are, the ranks sum
/// one more count per chunk of the entries equal to v*, and each chunk keeps its first ones
/// in the order above. With fewer than k·m positive entries, every positive entry is kept.
///
/// Inference (held-out evaluation, encode, export) keeps relu(π)·1[relu(π) > θ] with a running
/// threshold θ ← 0.999·θ + 0.001·v*, updated from step `thresholdStart` on. θ is 0 until then
/// (inference keeps every positive entry), and its first update sets it to v*.
public final class BatchTopKSelection<T: BLASScalar> {
    /// The first step (Adam's t before the update) that updates θ.
    public static var thresholdStart: Int { 1000 }
    /// The running threshold θ (0: not yet set).
    public var threshold: Double = 0
    private let storage: Arena
    private let histogram: UnsafeMutablePointer<Double>  // (256)
    private let tieCounts: UnsafeMutablePointer<Double>  // (chunkCount) entries equal to v* per chunk of the batch
    private let chunkCount: Int
    /// (local chunks) what `select` returns: entries kept per local chunk; and their quotas of ties.
    let kept: UnsafeMutablePointer<Int>
    private let quota: UnsafeMutablePointer<Int>

    public init(chunkCount: Int, localChunks: Int) {
        self.chunkCount = chunkCount
        var size = Arena.Size()
        size.add(Double.self, 256); size.add(Double.self, chunkCount); size.add(Int.self, localChunks); size.add(Int.self, localChunks)
        storage = Arena(size)
        histogram = storage.take(Double.self, 256)
        tieCounts = storage.take(Double.self, chunkCount)
        kept = storage.take(Int.self, localChunks)
        quota = storage.take(Int.self, localChunks)
    }

    /// The order key of a positive value: its bit pattern (sign bit 0).
    @inline(__always) static func key(_ v: T) -> UInt64 {
        UInt64(v.exponentBitPattern) << UInt64(T.significandBitCount) | UInt64(v.significandBitPattern)
    }
    @inline(__always) static func value(ofKey k: UInt64) -> T {
        let mask = (UInt64(1) << UInt64(T.significandBitCount)) - 1
        return T(sign: .plus, exponentBitPattern: T.RawExponent(k >> UInt64(T.significandBitCount)),
                 significandBitPattern: T.RawSignificand(k & mask))
    }

    /// Selects over the local chunks' π (`pre[c]`, (`rows[c]`, h)), chunk `firstChunk + c` of
    /// the batch, keeping `keep` entries over the global batch; writes each chunk's z (kept
    /// π, else 0) and adds Σ_i z_ij to its column sums. Collective (`sumCounts`). Returns the
    /// kept count per local chunk (in `kept`) and v* (0 when nothing is kept).
    @_specialize(where T == Float)
    func select(pre: [UnsafeMutablePointer<T>], z: [UnsafeMutablePointer<T>], columnSums: [UnsafeMutablePointer<T>],
                rows: UnsafePointer<Int>, h: Int, keep: Int, firstChunk: Int,
                sumCounts: (UnsafeMutablePointer<Double>, Int) throws -> Void) throws -> T {
        let bits = MemoryLayout<T>.size * 8
        var prefix: UInt64 = 0
        var need = Double(keep)
        var equalTotal = 0.0
        for round in 0..<(bits / 8) {
            let shift = UInt64(bits - 8 * (round + 1))
            histogram.update(repeating: 0, count: 256)
            for (c, p) in pre.enumerated() {
                for e in 0..<(rows[c] * h) where p[e] > 0 {
                    let k = Self.key(p[e])
                    if round == 0 || k >> (shift + 8) == prefix { histogram[Int((k >> shift) & 255)] += 1 }
                }
            }
            try sumCounts(histogram, 256)
            if round == 0 {
                let positives = (0..<256).reduce(0.0) { $0 + histogram[$1] }
                need = min(need, positives)
                if need == 0 { break }
            }
            var above = 0.0, chosen = 0
            for bin in (0..<256).reversed() {
                if above + histogram[bin] >= need { chosen = bin; break }
                above += histogram[bin]
            }
            need -= above
            equalTotal = histogram[chosen]
            prefix = prefix << 8 | UInt64(chosen)
        }
        guard need > 0 else {
            for (c, zc) in z.enumerated() { zc.update(repeating: 0, count: rows[c] * h); kept[c] = 0 }
            return 0
        }
        // How many entries equal to v* each local chunk keeps, in batch order.
        quota.update(repeating: Int.max, count: pre.count)
        if need < equalTotal {
            tieCounts.update(repeating: 0, count: chunkCount)
            for (c, p) in pre.enumerated() {
                var n = 0.0
                for e in 0..<(rows[c] * h) where p[e] > 0 && Self.key(p[e]) == prefix { n += 1 }
                tieCounts[firstChunk + c] = n
            }
            try sumCounts(tieCounts, chunkCount)
            var before = 0.0
            for g in 0..<chunkCount {
                if g >= firstChunk && g < firstChunk + pre.count {
                    quota[g - firstChunk] = Int(max(0, min(need - before, tieCounts[g])))
                }
                before += tieCounts[g]
            }
        }
        for (c, p) in pre.enumerated() {
            let zc = z[c], sums = columnSums[c]
            var ties = quota[c], n = 0
            for i in 0..<rows[c] {
                for j in 0..<h {
                    let e = i * h + j, v = p[e]
                    var keepIt = false
                    if v > 0 {
                        let k = Self.key(v)
                        if k > prefix { keepIt = true } else if k == prefix && ties > 0 { keepIt = true; ties -= 1 }
                    }
                    if keepIt { zc[e] = v; sums[j] += v; n += 1 } else { zc[e] = 0 }
                }
            }
            kept[c] = n
        }
        return Self.value(ofKey: prefix)
    }

    /// θ after a step whose smallest kept value was `smallest`, at Adam step `step`.
    func updateThreshold(smallest: T, step: Int) {
        guard step >= Self.thresholdStart, smallest > 0 else { return }
        threshold = threshold == 0 ? Double(smallest) : 0.999 * threshold + 0.001 * Double(smallest)
    }

    /// Inference: z = relu(π)·1[relu(π) > θ] of `pre` (rows, h) into z; returns the kept count.
    static func infer(z: UnsafeMutablePointer<T>, pre: UnsafePointer<T>, threshold: Double, rows: Int, h: Int) -> Int {
        let theta = T(threshold)
        var n = 0
        for e in 0..<(rows * h) {
            let v = pre[e]
            if v > 0 && v > theta { z[e] = v; n += 1 } else { z[e] = 0 }
        }
        return n
    }
}
