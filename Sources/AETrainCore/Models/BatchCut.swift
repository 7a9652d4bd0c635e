/// How a global batch of m positions (the sampler's order) is cut into chunks and shared by
/// P ranks: each rank computes an equal share, whichever rows it holds.
///
///     chunk c of C       positions ⌊m·c/C⌋ ..< ⌊m·(c+1)/C⌋        sizes differ by at most 1
///     rank q of P        chunks ⌊C·q/P⌋ ..< ⌊C·(q+1)/P⌋
///     rank q's piece     positions ⌊m·q/P⌋ ..< ⌊m·(q+1)/P⌋        (the union of its chunks)
///
/// With `fixedOrder` (the deterministic step), C = `fixedChunks` (4) whenever P divides it
/// (P = 1, 2, 4): every chunk is then the same rows wherever it runs, and the chunks' partial
/// results are summed in one binary tree, ((c0 + c1) + (c2 + c3)), so the step gives the same
/// bits on 1, 2 and 4 ranks. For other P (3, 8, …) C = P: still one equal chunk per rank and a
/// fixed order for that P (the same bits run after run), but not the bits of P = 1.
/// Without `fixedOrder`, C = P: each rank's piece is one chunk.
public struct BatchCut: Equatable, Sendable {
    /// The chunk count of the deterministic step whenever the rank count divides it.
    public static let fixedChunks = 4

    public let batchSize: Int
    public let ranks: Int
    public let rank: Int
    public let fixedOrder: Bool
    /// C.
    public let chunkCount: Int

    public init(batchSize m: Int, ranks p: Int, rank r: Int, fixedOrder: Bool) {
        precondition(m > 0 && p > 0 && r >= 0 && r < p)
        batchSize = m; ranks = p; rank = r; self.fixedOrder = fixedOrder
        chunkCount = fixedOrder && Self.fixedChunks % p == 0 ? Self.fixedChunks : p
    }

    /// One process computing `rows` rows as one chunk (tests and callers outside training).
    public static func single(rows: Int) -> BatchCut {
        BatchCut(batchSize: max(1, rows), ranks: 1, rank: 0, fixedOrder: false)
    }

    /// True when the step's bits do not depend on the rank count (C is the fixed one).
    public var isRankIndependent: Bool { fixedOrder && chunkCount == Self.fixedChunks }

    /// Positions of chunk c in the global batch.
    public func chunk(_ c: Int) -> Range<Int> { (batchSize * c / chunkCount)..<(batchSize * (c + 1) / chunkCount) }

    /// The chunks rank q computes.
    public func chunks(ofRank q: Int) -> Range<Int> { (chunkCount * q / ranks)..<(chunkCount * (q + 1) / ranks) }
    /// This rank's chunks.
    public var localChunks: Range<Int> { chunks(ofRank: rank) }

    /// Positions rank q computes.
    public func piece(ofRank q: Int) -> Range<Int> { (batchSize * q / ranks)..<(batchSize * (q + 1) / ranks) }
    /// This rank's positions.
    public var piece: Range<Int> { piece(ofRank: rank) }

    /// The rank whose piece holds position k: the largest q with ⌊m·q/P⌋ ≤ k.
    @inline(__always) public func rank(ofPosition k: Int) -> Int { ((k + 1) * ranks - 1) / batchSize }
    /// The chunk that holds position k.
    @inline(__always) public func chunk(ofPosition k: Int) -> Int { ((k + 1) * chunkCount - 1) / batchSize }

    /// Rows of the largest chunk, ⌈m/C⌉.
    public var maxChunkRows: Int { (batchSize + chunkCount - 1) / chunkCount }

    /// Elements between two local chunks in the batch buffer: every chunk starts on a 64-byte
    /// boundary, as it does wherever it runs (OpenBLAS's level-1 kernels may sum a vector
    /// differently at another alignment).
    public func slotStride(d: Int) -> Int { (maxChunkRows * d + 15) / 16 * 16 }

    /// Where position k of this rank's piece goes in a batch buffer of slots (elements from its start).
    @inline(__always) public func offset(ofPosition k: Int, d: Int) -> Int {
        let c = chunk(ofPosition: k)
        return (c - localChunks.lowerBound) * slotStride(d: d) + (k - chunk(c).lowerBound) * d
    }
}
