import Foundation

extension Encoding {
    /// Collective. The codes as CSR arrays in one safetensors file: `indptr` (N+1) I64,
    /// `indices` (nnz) I32 (unit j of each nonzero), `values` (nnz) F32, rows in order.
    /// Each rank keeps its own rows' nonzeros (memory ∝ its nnz); rank 0 gathers every row's
    /// count (N values), writes indptr, then gathers and writes the nonzeros in chunks of rows
    /// at their offsets. Returns nnz and the file's size.
    static func writeSparse(_ encoder: ShardEncoder, to file: OffsetFile?, comm: Communicator) throws -> (nonzero: Int, bytes: Int) {
        let rows = encoder.rows, mine = rows.ranges[comm.rank], n = rows.count, h = encoder.model.shape.h
        var starts: [Int] = [0]  // (local rows + 1): where each local row's nonzeros start
        var indices: [Int32] = [], values: [Float] = []
        let k = max(1, chunkBytes / (4 * h))
        var z = [Float](repeating: 0, count: k * h)
        var lo = mine.lowerBound
        while lo < mine.upperBound {
            let chunk = lo..<min(mine.upperBound, lo + k)
            z.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }  // k·h ≥ 1 elements
                encoder.codes(chunk, into: base)
                for i in 0..<chunk.count {
                    for j in 0..<h where base[i * h + j] != 0 {
                        indices.append(Int32(j)); values.append(base[i * h + j])
                    }
                    starts.append(indices.count)
                }
            }
            lo = chunk.upperBound
        }
        let rowCounts = (0..<mine.count).map { Int64(starts[$0 + 1] - starts[$0]) }
        let shardSizes = rows.ranges.map(\.count)
        let allCounts = try comm.gather(rowCounts, counts: shardSizes, root: 0)
        var total = [Double(indices.count)]
        try comm.allreduceSum(&total)
        let nnz = Int(total[0])

        let (header, offsets) = SafeTensors.header(
            [.init("indptr", .I64, [n + 1]), .init("indices", .I32, [nnz]), .init("values", .F32, [nnz])],
            metadata: ["format": "csr", "shape": "\(n),\(h)"])
        var indptr: [Int64] = []
        if let file {
            indptr = [0]
            indptr.reserveCapacity(n + 1)
            for c in allCounts { indptr.append((indptr.last ?? 0) + c) }
            file.write(header, at: 0)
            file.write(SafeTensors.bytes(indptr), at: offsets[0])
        }

        let rowsPerChunk = max(1, chunkBytes / (8 * h * comm.size))
        let chunks = ((shardSizes.max() ?? 0) + rowsPerChunk - 1) / rowsPerChunk
        for c in 0..<chunks {
            let all = pieces(chunk: c, rowsPerChunk: rowsPerChunk, rows: rows)
            let piece = all[comm.rank]
            let slice = piece.isEmpty ? 0..<0
                : starts[piece.lowerBound - mine.lowerBound]..<starts[piece.upperBound - mine.lowerBound]
            // Rank 0 knows every piece's count from indptr; the others need only their own.
            let counts = all.enumerated().map { r, piece in
                file != nil ? Int(indptr[piece.upperBound] - indptr[piece.lowerBound]) : (r == comm.rank ? slice.count : 0)
            }
            let gotIndices = try comm.gather(Array(indices[slice]), counts: counts, root: 0)
            let gotValues = try comm.gather(Array(values[slice]), counts: counts, root: 0)
            guard let file else { continue }
            var at = 0
            for (piece, count) in zip(all, counts) {
                let first = Int(indptr[piece.lowerBound])
                file.write(SafeTensors.bytes(Array(gotIndices[at..<(at + count)])), at: offsets[1] + 4 * first)
                file.write(SafeTensors.bytes(Array(gotValues[at..<(at + count)])), at: offsets[2] + 4 * first)
                at += count
            }
        }
        return (nnz, header.count + 8 * (n + 1) + 8 * nnz)
    }
}
