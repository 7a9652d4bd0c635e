/// `ActiveUnits` by unit (compressed sparse columns): unit j's entries are
/// `row[columnStart[j] ..< columnStart[j + 1]]`, rows ascending, with Z_ij in `value`.
///
/// The sparse backward runs by unit so that the rank's threads can share it without sharing a
/// row of dW or dVᵀ: each thread takes whole units, and each unit's sums still run in row
/// order, the order of one thread (`Objective.sparseArchitectureBackward`).
final class ActiveColumns<T: BLASScalar> {
    let h: Int
    let capacity: Int
    private let storage: Arena
    let columnStart: UnsafeMutablePointer<Int32>  // (h + 1)
    let row: UnsafeMutablePointer<Int32>          // (capacity)
    let value: UnsafeMutablePointer<T>            // (capacity)

    static func reserve(_ size: inout Arena.Size, h: Int, capacity: Int) {
        size.add(Int32.self, h + 1); size.add(Int32.self, capacity); size.add(T.self, capacity)
    }

    init(h: Int, capacity: Int, arena: Arena) {
        self.h = h
        self.capacity = max(0, capacity)
        storage = arena
        columnStart = arena.take(Int32.self, h + 1)
        row = arena.take(Int32.self, capacity)
        value = arena.take(T.self, capacity)
    }

    /// All entries.
    var count: Int { Int(columnStart[h]) }

    /// The entries of `rows` regrouped by unit (a counting sort; rows stay ascending).
    func build(from rows: ActiveUnits<T>) {
        precondition(rows.count <= capacity)
        columnStart.update(repeating: 0, count: h + 1)
        for e in 0..<rows.count { columnStart[Int(rows.unit[e]) + 1] += 1 }
        for j in 0..<h { columnStart[j + 1] += columnStart[j] }
        // columnStart[j] is now unit j's next free position; shifted back after the fill.
        for i in 0..<rows.rows {
            for e in rows.entries(ofRow: i) {
                let j = Int(rows.unit[e]), at = Int(columnStart[j])
                row[at] = Int32(i)
                value[at] = rows.value[e]
                columnStart[j] += 1
            }
        }
        for j in stride(from: h, to: 0, by: -1) { columnStart[j] = columnStart[j - 1] }
        columnStart[0] = 0
    }

    /// Unit j's entries: positions into `row` and `value`.
    @inline(__always)
    func entries(ofColumn j: Int) -> Range<Int> { Int(columnStart[j])..<Int(columnStart[j + 1]) }

    /// The first unit of worker w's share of 0..<h when `parts` workers split the entries
    /// evenly, rounded to a multiple of `align` units (w = parts: h).
    func firstUnit(ofPart w: Int, parts: Int, align: Int) -> Int {
        guard w > 0 else { return 0 }
        guard w < parts else { return h }
        let target = Int32(count * w / parts)
        var lo = 0, hi = h                   // the first j with columnStart[j] ≥ target
        while lo < hi {
            let mid = (lo + hi) / 2
            if columnStart[mid] < target { lo = mid + 1 } else { hi = mid }
        }
        return min(h, (lo + align / 2) / align * align)
    }
}
