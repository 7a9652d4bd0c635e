/// A sum over ranks whose rounding depends on the rank count only: every element is summed
/// in one binary tree over the ranks in rank order, (((r0 + r1) + (r2 + r3)) + …), whichever
/// rank computes it. Float addition is commutative, so partners that add each other's values
/// get the same bits. MPI_Allreduce promises no order (Open MPI picks its algorithm by message
/// size and may pair rank 0 with rank 2 first), hence this, on pairwise exchanges.
///
/// With P a power of two:
///  - short arrays: recursive doubling. At distance 1, 2, 4, … partners r and r ^ distance
///    swap their whole arrays and both add: log₂ P exchanges of the array.
///  - long arrays: recursive halving, then doubling back (Rabenseifner's allreduce). At
///    distance 1, 2, … partners split their current segment in two halves, each keeps one, sends
///    the other and adds the partner's copy of the one it keeps; then the finished pieces travel
///    back in reverse. Each element meets the same tree as above, at 2·(P−1)/P of the array
///    sent per rank.
///
/// Other P: the ranks from P′ (the largest power of two ≤ P) up first fold into rank r − P′
/// (r − P′ adds them), the P′ ranks sum as above, and the result goes back. A fixed order for
/// that P, not the same tree as for P′.
extension Communicator {
    /// In-place sum of `data` (count) over the ranks in the fixed tree order. `scratch` (count)
    /// receives partners' values. Collective.
    public func allreduceSumInFixedOrder<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int,
                                                        scratch: UnsafeMutablePointer<T>) throws {
        try FixedOrder.allreduceSum(data, count: count, scratch: scratch, comm: self)
    }
}

extension FixedOrder {
    /// `Communicator.allreduceSumInFixedOrder`. Specialized for float32 explicitly: reached from
    /// generic code, the additions would otherwise go through the generic witnesses.
    @_specialize(where T == Float)
    static func allreduceSum<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int,
                                            scratch: UnsafeMutablePointer<T>, comm: Communicator) throws {
        let p = comm.size, r = comm.rank
        func sendReceive(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer, bytes receiveBytes: Int,
                         peer: Int) throws {
            try comm.sendReceive(send, bytes: bytes, into: receive, bytes: receiveBytes, peer: peer)
        }
        guard p > 1 else { return }
        var p2 = 1
        while p2 * 2 <= p { p2 *= 2 }
        let bytes = count * MemoryLayout<T>.stride
        // Fold the ranks beyond the largest power of two.
        if r >= p2 {
            try sendReceive(data, bytes: bytes, into: scratch, bytes: 0, peer: r - p2)
            try sendReceive(data, bytes: 0, into: data, bytes: bytes, peer: r - p2)
            return
        }
        if r + p2 < p {
            try sendReceive(data, bytes: 0, into: scratch, bytes: bytes, peer: r + p2)
            add(scratch, into: data, count: count)
        }
        if count < FixedOrder.halvingFrom {
            var distance = 1
            while distance < p2 {
                try sendReceive(data, bytes: bytes, into: scratch, bytes: bytes, peer: r ^ distance)
                add(scratch, into: data, count: count)
                distance *= 2
            }
        } else {
            try halvingDoubling(data, count: count, scratch: scratch, ranks: p2, comm: comm)
        }
        if r + p2 < p {
            try sendReceive(data, bytes: bytes, into: scratch, bytes: 0, peer: r + p2)
        }
    }

    /// Rabenseifner's allreduce among ranks 0..<p2 (a power of two) in the fixed tree order.
    @_specialize(where T == Float)
    private static func halvingDoubling<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int,
                                                       scratch: UnsafeMutablePointer<T>, ranks p2: Int, comm: Communicator) throws {
        let r = comm.rank, stride = MemoryLayout<T>.stride
        func sendReceive(_ send: UnsafeRawPointer, bytes: Int, into receive: UnsafeMutableRawPointer, bytes receiveBytes: Int,
                         peer: Int) throws {
            try comm.sendReceive(send, bytes: bytes, into: receive, bytes: receiveBytes, peer: peer)
        }
        var lo = 0, hi = count, distance = 1
        while distance < p2 {
            let mid = FixedOrder.split(lo, hi)
            let peer = r ^ distance
            let (keep, give) = r & distance == 0 ? (lo..<mid, mid..<hi) : (mid..<hi, lo..<mid)
            try sendReceive(data + give.lowerBound, bytes: give.count * stride,
                            into: scratch + keep.lowerBound, bytes: keep.count * stride, peer: peer)
            add(scratch + keep.lowerBound, into: data + keep.lowerBound, count: keep.count)
            (lo, hi) = (keep.lowerBound, keep.upperBound)
            distance *= 2
        }
        // Back: at each distance, from the largest, partners swap the halves they finished.
        distance = p2 / 2
        while distance >= 1 {
            // The segment this rank split at `distance`: replay the splits below it.
            var slo = 0, shi = count, d = 1
            while d < distance {
                let mid = FixedOrder.split(slo, shi)
                (slo, shi) = r & d == 0 ? (slo, mid) : (mid, shi)
                d *= 2
            }
            let mid = FixedOrder.split(slo, shi)
            let (mine, theirs) = r & distance == 0 ? (slo..<mid, mid..<shi) : (mid..<shi, slo..<mid)
            try sendReceive(data + mine.lowerBound, bytes: mine.count * stride,
                            into: data + theirs.lowerBound, bytes: theirs.count * stride, peer: r ^ distance)
            distance /= 2
        }
    }
}

/// The element-wise pieces of fixed-order sums, shared by the ranks' tree and a rank's own chunks.
public enum FixedOrder {
    /// Arrays from this many elements are summed by halving and doubling, shorter ones by
    /// exchanging them whole (fewer messages). Both give the same bits.
    static let halvingFrom = 4096

    /// Where a segment [lo, hi) splits: its middle, on a multiple of 16 elements (64-byte
    /// pieces for float) when the segment is long enough.
    @inline(__always) static func split(_ lo: Int, _ hi: Int) -> Int {
        let mid = lo + (hi - lo) / 2
        return hi - lo >= 64 ? min(hi, lo + (mid - lo + 15) / 16 * 16) : mid
    }

    /// Sums `chunks` arrays of `count` elements, `stride` apart from `data`, into the first, in
    /// the tree order: ((a0 + a1) + (a2 + a3)) for four.
    @_specialize(where T == Float)
    public static func tree<T: BLASScalar>(_ data: UnsafeMutablePointer<T>, count: Int, stride: Int, chunks: Int) {
        var span = 1
        while span < chunks {
            for i in Swift.stride(from: 0, to: chunks - span, by: 2 * span) {
                add(data + (i + span) * stride, into: data + i * stride, count: count)
            }
            span *= 2
        }
    }

    /// data[i] += other[i] over count elements.
    @_specialize(where T == Float)
    public static func add<T: BLASScalar>(_ other: UnsafePointer<T>, into data: UnsafeMutablePointer<T>, count: Int) {
        for i in 0..<count { data[i] += other[i] }
    }
}
