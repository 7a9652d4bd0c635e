/// Which examples `encode` writes, and which rank computes each: every example of the data
/// (output row o is example o), or the run's held-out examples (`--held-out`: output row o
/// is example heldOut[o], global indices ascending). Rank r writes output rows `ranges[r]`,
/// the ones whose examples lie in its shard, so that each rank's rows are contiguous in the
/// output and the ranks' pieces follow each other in rank order.
struct EncodedRows: Equatable {
    /// M, the rows of the output.
    let count: Int
    /// (ranks): the output rows of each rank.
    let ranges: [Range<Int>]
    /// nil: every example, output row o is example o.
    let examples: [Int]?

    /// All N examples, sharded as the data are.
    init(all n: Int, ranks: Int) {
        count = n
        ranges = (0..<ranks).map { DatasetShard.shardRange(examples: n, rank: $0, size: ranks) }
        examples = nil
    }

    /// The examples `rows` (global indices, ascending, each < n) of N examples sharded over `ranks`.
    init(only rows: [Int], of n: Int, ranks: Int) {
        count = rows.count
        examples = rows
        var lo = 0
        ranges = (0..<ranks).map { r in
            let shard = DatasetShard.shardRange(examples: n, rank: r, size: ranks)
            let start = lo
            while lo < rows.count, rows[lo] < shard.upperBound { lo += 1 }
            return start..<lo
        }
    }

    /// The example (global index) of output row `o`.
    @inline(__always) func example(_ o: Int) -> Int { examples?[o] ?? o }
}
