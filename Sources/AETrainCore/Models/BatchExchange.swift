/// Brings each rank the rows of its piece of the global batch (`BatchCut`), wherever they are
/// stored: one personalized all-to-all per step (`Communicator.exchange`).
///
/// Every rank knows the batch's positions (the sampler runs on every rank) and which rank
/// holds each row (`DatasetShard.shardRange`), so all counts and offsets are computed
/// locally, without a first exchange of sizes. A rank receives the rows of its piece that
/// others hold, on average (P−1)/P of its m/P rows (d·4 bytes each), and sends as many (each
/// row to the one rank that computes it); rows it holds for itself are copied directly.
///
/// Buffers are sized once; `fill` allocates nothing.
public final class BatchExchange {
    public let cut: BatchCut
    let shard: DatasetShard
    let comm: Communicator
    private let d: Int
    private let ranks: Int

    private let scratch: Arena
    private let send: UnsafeMutablePointer<Float>     // (m, d) rows this rank sends, by receiving rank, in batch order
    private let receive: UnsafeMutablePointer<Float>  // (piece, d) rows it receives, by sending rank, in batch order
    private let sendCounts: UnsafeMutablePointer<Int>      // (P) bytes
    private let sendOffsets: UnsafeMutablePointer<Int>     // (P) bytes
    private let receiveCounts: UnsafeMutablePointer<Int>   // (P) bytes
    private let receiveOffsets: UnsafeMutablePointer<Int>  // (P) bytes
    private let cursor: UnsafeMutablePointer<Int>          // (P) rows

    /// - cut: the batch's cut for `comm`'s rank count and rank.
    public init(cut: BatchCut, shard: DatasetShard, comm: Communicator) {
        precondition(cut.ranks == comm.size && cut.rank == comm.rank)
        self.cut = cut
        self.shard = shard
        self.comm = comm
        d = shard.d
        ranks = comm.size
        let m = cut.batchSize, p = comm.size
        var size = Arena.Size()
        size.add(Float.self, ranks > 1 ? m * d : 1); size.add(Float.self, ranks > 1 ? cut.piece.count * d : 1)
        for _ in 0..<5 { size.add(Int.self, p) }
        scratch = Arena(size)
        send = scratch.take(Float.self, ranks > 1 ? m * d : 1)
        receive = scratch.take(Float.self, ranks > 1 ? cut.piece.count * d : 1)
        sendCounts = scratch.take(Int.self, p)
        sendOffsets = scratch.take(Int.self, p)
        receiveCounts = scratch.take(Int.self, p)
        receiveOffsets = scratch.take(Int.self, p)
        cursor = scratch.take(Int.self, p)
    }

    /// The rank whose shard holds example `row` of n: the largest q with ⌊n·q/P⌋ ≤ row.
    @inline(__always) private func holder(ofRow row: Int) -> Int { ((row + 1) * ranks - 1) / shard.info.examples }

    /// Copies this rank's piece of the batch `indices` (m positions among the training examples)
    /// into `batch`, chunk by chunk at `cut.offset(ofPosition:d:)`. Collective.
    public func fill(indices: UnsafePointer<Int32>, into batch: UnsafeMutablePointer<Float>) throws {
        let me = comm.rank, m = cut.batchSize, piece = cut.piece
        guard ranks > 1 else {
            for k in 0..<m { shard.copyRow(shard.trainingRow(Int(indices[k])), to: batch + cut.offset(ofPosition: k, d: d)) }
            return
        }
        for q in 0..<ranks { sendCounts[q] = 0; receiveCounts[q] = 0 }
        // Counts; the rows that stay here are copied at once.
        for k in 0..<m {
            let row = shard.trainingRow(Int(indices[k]))
            let from = holder(ofRow: row), to = cut.rank(ofPosition: k)
            if from == me && to == me {
                shard.copyRow(row, to: batch + cut.offset(ofPosition: k, d: d))
            } else if from == me {
                sendCounts[to] += 1
            } else if to == me {
                receiveCounts[from] += 1
            }
        }
        var sent = 0, received = 0
        for q in 0..<ranks {
            sendOffsets[q] = sent; sent += sendCounts[q]
            receiveOffsets[q] = received; received += receiveCounts[q]
            cursor[q] = sendOffsets[q]
        }
        // The rows to send, grouped by receiver, in batch order within each group.
        for k in 0..<m {
            let row = shard.trainingRow(Int(indices[k]))
            let to = cut.rank(ofPosition: k)
            guard holder(ofRow: row) == me, to != me else { continue }
            shard.copyRow(row, to: send + cursor[to] * d)
            cursor[to] += 1
        }
        let rowBytes = d * MemoryLayout<Float>.stride
        for q in 0..<ranks {
            sendCounts[q] *= rowBytes; sendOffsets[q] *= rowBytes
            receiveCounts[q] *= rowBytes; receiveOffsets[q] *= rowBytes
            cursor[q] = receiveOffsets[q] / rowBytes
        }
        try comm.exchange(send, counts: sendCounts, offsets: sendOffsets, into: receive, counts: receiveCounts, offsets: receiveOffsets)
        // Each sender's rows arrive in batch order: put them in place.
        for k in piece {
            let from = holder(ofRow: shard.trainingRow(Int(indices[k])))
            guard from != me else { continue }
            (batch + cut.offset(ofPosition: k, d: d)).update(from: receive + cursor[from] * d, count: d)
            cursor[from] += 1
        }
    }

    /// Elements of the batch buffer `fill` writes into: this rank's chunk slots.
    public var batchElements: Int { max(1, cut.localChunks.count) * cut.slotStride(d: d) }
}
