import AETrainCore
import XCTest

/// The balanced batch: how it is cut, how its rows travel, and the fixed-order sum over ranks.
final class BatchCutTests: XCTestCase {
    /// Every rank computes an equal piece (sizes differ by at most one row), the pieces cover the
    /// batch in rank order, and a rank's chunks make up its piece.
    func testPiecesAreEqualAndCoverTheBatch() {
        for fixed in [false, true] {
            for m in 1...23 {
                for p in 1...min(m, 9) {
                    var next = 0
                    for r in 0..<p {
                        let cut = BatchCut(batchSize: m, ranks: p, rank: r, fixedOrder: fixed)
                        let piece = cut.piece
                        XCTAssertEqual(piece.lowerBound, next, "m \(m) P \(p) rank \(r)")
                        XCTAssertTrue(piece.count == m / p || piece.count == m / p + 1, "m \(m) P \(p) rank \(r): \(piece.count) rows")
                        next = piece.upperBound
                        let chunks = cut.localChunks
                        XCTAssertFalse(chunks.isEmpty)
                        XCTAssertEqual(cut.chunk(chunks.lowerBound).lowerBound, piece.lowerBound)
                        XCTAssertEqual(cut.chunk(chunks.upperBound - 1).upperBound, piece.upperBound)
                        var offsets = Set<Int>()
                        for k in piece {
                            XCTAssertEqual(cut.rank(ofPosition: k), r)
                            XCTAssertTrue(cut.chunk(cut.chunk(ofPosition: k)).contains(k))
                            XCTAssertLessThanOrEqual(cut.chunk(cut.chunk(ofPosition: k)).count, cut.maxChunkRows)
                            let offset = cut.offset(ofPosition: k, d: 3)
                            XCTAssertTrue(offset >= 0 && offset + 3 <= chunks.count * cut.slotStride(d: 3))
                            offsets.insert(offset)
                        }
                        XCTAssertEqual(offsets.count, piece.count, "distinct places in the batch buffer")
                    }
                    XCTAssertEqual(next, m)
                }
            }
        }
    }

    /// The deterministic cut is one and the same on 1, 2 and 4 ranks (4 chunks); other rank
    /// counts get a chunk each.
    func testFixedChunksDoNotDependOnOneTwoOrFourRanks() {
        for m in [1, 3, 4, 7, 100, 101, 1601] {
            let reference = BatchCut(batchSize: m, ranks: 1, rank: 0, fixedOrder: true)
            XCTAssertEqual(reference.chunkCount, 4)
            for p in [1, 2, 4] {
                for r in 0..<p {
                    let cut = BatchCut(batchSize: m, ranks: p, rank: r, fixedOrder: true)
                    XCTAssertTrue(cut.isRankIndependent)
                    XCTAssertEqual((0..<4).map { cut.chunk($0) }, (0..<4).map { reference.chunk($0) }, "m \(m) P \(p)")
                    XCTAssertEqual(cut.localChunks, (4 * r / p)..<(4 * (r + 1) / p))
                    XCTAssertEqual(cut.slotStride(d: 625) % 16, 0, "chunks start on 64-byte boundaries")
                }
            }
            for p in [3, 5, 8] where p <= m {
                let cut = BatchCut(batchSize: m, ranks: p, rank: 0, fixedOrder: true)
                XCTAssertEqual(cut.chunkCount, p)
                XCTAssertFalse(cut.isRankIndependent)
            }
        }
        XCTAssertEqual(BatchCut(batchSize: 100, ranks: 2, rank: 1, fixedOrder: false).chunkCount, 2, "fast: one chunk per rank")
    }

    /// Through one exchange, each of P ranks (threads here) receives exactly the rows of its piece,
    /// in batch order, from whichever rank holds them.
    func testExchangeBringsEachRankItsPiece() throws {
        let spec = SyntheticSpec(examples: 37, shape: ImageShape(height: 3, width: 4))
        let full = try DatasetShard.load(.synthetic(spec, seed: 5), imageShape: nil, comm: SingleProcess())
        let d = full.d, m = 11
        for fixed in [false, true] {
            for p in [1, 2, 3, 4] {
                var sampler = GlobalBatchSampler(exampleCount: 37, batchSize: m, seed: 9)
                var batches = [[Int32]](repeating: [Int32](repeating: 0, count: m), count: 3)
                for i in 0..<3 { batches[i].withUnsafeMutableBufferPointer { sampler.next(into: $0.baseAddress!) } }
                try ThreadRanks(size: p).run { comm in
                    // Each rank sends only the rows its shard would hold (`BatchExchange` finds the holder by
                    // `DatasetShard.shardRange`); the full dataset stands in for its shard.
                    let cut = BatchCut(batchSize: m, ranks: p, rank: comm.rank, fixedOrder: fixed)
                    let exchange = BatchExchange(cut: cut, shard: full, comm: comm)
                    var batch = [Float](repeating: .nan, count: exchange.batchElements)
                    var row = [Float](repeating: 0, count: d)
                    for indices in batches {
                        try indices.withUnsafeBufferPointer { i in
                            try batch.withUnsafeMutableBufferPointer { try exchange.fill(indices: i.baseAddress!, into: $0.baseAddress!) }
                        }
                        for k in cut.piece {
                            row.withUnsafeMutableBufferPointer { full.copyRow(Int(indices[k]), to: $0.baseAddress!) }
                            let at = cut.offset(ofPosition: k, d: d)
                            XCTAssertEqual(Array(batch[at..<(at + d)]), row, "P \(p) rank \(comm.rank) position \(k)")
                        }
                    }
                }
            }
        }
    }

    /// The sum over ranks has the bits of one binary tree over the ranks in order, on every rank,
    /// for short arrays (whole exchanges) and long ones (halving and doubling), any rank count.
    func testFixedOrderSumIsOneTreeOnEveryRank() throws {
        func values(rank r: Int, count: Int) -> [Float] {
            var rng = Xoshiro256(seed: UInt64(r) &* 7919 &+ 1)
            return (0..<count).map { _ in Float(rng.normal()) * Float(1 << (r % 5)) }
        }
        /// The tree over ranks lo..<hi, a power of two of them.
        func tree(_ lo: Int, _ hi: Int, _ leaf: (Int) -> [Float]) -> [Float] {
            if hi - lo == 1 { return leaf(lo) }
            let mid = (lo + hi) / 2
            return zip(tree(lo, mid, leaf), tree(mid, hi, leaf)).map { $0 + $1 }
        }
        for p in [2, 3, 4, 5, 8] {
            for count in [1, 7, 4095, 4096, 10_007] {
                var p2 = 1
                while p2 * 2 <= p { p2 *= 2 }
                let expected = tree(0, p2) { r in
                    let own = values(rank: r, count: count)
                    return r + p2 < p ? zip(own, values(rank: r + p2, count: count)).map { $0 + $1 } : own
                }
                var naive = values(rank: 0, count: count)
                for r in 1..<p { naive = zip(naive, values(rank: r, count: count)).map { $0 + $1 } }
                if p >= 3 && count > 1000 {
                    XCTAssertNotEqual(expected.map(\.bitPattern), naive.map(\.bitPattern), "the order shows in the bits")
                }
                try ThreadRanks(size: p).run { comm in
                    var data = values(rank: comm.rank, count: count)
                    var scratch = [Float](repeating: 0, count: count)
                    try data.withUnsafeMutableBufferPointer { d in
                        try scratch.withUnsafeMutableBufferPointer {
                            try comm.allreduceSumInFixedOrder(d.baseAddress!, count: count, scratch: $0.baseAddress!)
                        }
                    }
                    XCTAssertEqual(data.map(\.bitPattern), expected.map(\.bitPattern), "P \(p), \(count) elements, rank \(comm.rank)")
                }
            }
        }
    }

    /// The deterministic step's bits do not depend on how many threads compute its chunks, and
    /// it computes the same objective as the fast step (to rounding).
    func testDeterministicStepIgnoresThreadsAndMatchesTheFastStep() throws {
        let spec = SyntheticSpec(examples: 300, shape: ImageShape(height: 10, width: 10))
        let shard = try DatasetShard.load(.synthetic(spec, seed: 0), imageShape: nil, comm: SingleProcess())
        var settings = TrainSettings()
        settings.hidden = 40
        settings.objective = ObjectiveSettings(lambda: 1)
        func train(_ options: StepOptions) throws -> (checksum: UInt64, rec: Double, l0: Double) {
            let model = try SparseAutoencoder(shard: shard, settings: settings, comm: SingleProcess(), options: options)
            var record = LogRecord(iteration: 0, rec: 0, loss: 0)
            for i in 0..<30 { record = try model.iterate(i, stop: false).record }
            return (model.store.checksum(), record.rec, record.l0 ?? .nan)
        }
        for kernels in [KernelChoice.dense, .sparse] {
            let one = try train(StepOptions(kernels: kernels, deterministic: true, threads: 1))
            let two = try train(StepOptions(kernels: kernels, deterministic: true, threads: 2))
            let fast = try train(StepOptions(kernels: kernels))
            XCTAssertEqual(one.checksum, two.checksum, "\(kernels): 1 or 2 threads, the same bits")
            XCTAssertEqual(one.rec, fast.rec, accuracy: 1e-3 * fast.rec, "\(kernels)")
            XCTAssertEqual(one.l0, fast.l0, accuracy: 0.01 * fast.l0, "\(kernels): L0 counts each chunk once")
        }
    }
}
