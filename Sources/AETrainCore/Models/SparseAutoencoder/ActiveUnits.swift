/// The nonzero activations of this rank's rows, row by row (compressed sparse rows):
/// row i's active units are `unit[rowStart[i] ..< rowStart[i + 1]]`, with values Z_ij in
/// `value` at the same positions.
///
/// A sparse model keeps about 1% of its activations nonzero, so four of the step's five
/// products only need these entries (see `Objective+Sparse.swift`). Buffers are sized once,
/// for `capacity` entries; `gather` refuses a batch with more.
public final class ActiveUnits<T: BLASScalar> {
    /// Largest number of nonzero entries `gather` accepts.
    public let capacity: Int
    public let maxRows: Int
    /// Nonzero entries after the last successful `gather`.
    public private(set) var count = 0
    public private(set) var rows = 0

    /// Holds the buffers below (shared with the step's other scratch).
    private let storage: Arena
    let rowStart: UnsafeMutablePointer<Int32>  // (maxRows + 1)
    let unit: UnsafeMutablePointer<Int32>      // (capacity) column j of each entry
    let value: UnsafeMutablePointer<T>         // (capacity) Z_ij

    /// Adds the buffers of `init(maxRows:capacity:arena:)` to `size`.
    public static func reserve(_ size: inout Arena.Size, maxRows: Int, capacity: Int) {
        size.add(Int32.self, maxRows + 1); size.add(Int32.self, capacity); size.add(T.self, capacity)
    }

    /// Takes its buffers from `arena`, which must have room for them (`reserve`).
    public init(maxRows: Int, capacity: Int, arena: Arena) {
        self.maxRows = maxRows
        self.capacity = max(0, capacity)
        storage = arena
        rowStart = arena.take(Int32.self, maxRows + 1)
        unit = arena.take(Int32.self, capacity)
        value = arena.take(T.self, capacity)
    }

    /// With an arena of its own.
    public convenience init(maxRows: Int, capacity: Int) {
        var size = Arena.Size()
        Self.reserve(&size, maxRows: maxRows, capacity: capacity)
        self.init(maxRows: maxRows, capacity: capacity, arena: Arena(size))
    }

    /// Collects the entries Z_ij > 0 of z (mr, h). Returns false, leaving the structure
    /// unusable, when there are more than `capacity`.
    public func gather(z: UnsafePointer<T>, mr: Int, h: Int) -> Bool {
        precondition(mr <= maxRows && h <= Int(Int32.max))
        var n = 0
        rowStart[0] = 0
        for i in 0..<mr {
            let row = z + i * h
            for j in 0..<h where row[j] > 0 {
                guard n < capacity else { count = 0; rows = 0; return false }
                unit[n] = Int32(j)
                value[n] = row[j]
                n += 1
            }
            rowStart[i + 1] = Int32(n)
        }
        count = n
        rows = mr
        return true
    }

    /// Collects the entries Z_ij ≠ 0 (jumprelu, whose kept entries may be negative where θ is);
    /// otherwise as `gather`.
    public func gatherNonzero(z: UnsafePointer<T>, mr: Int, h: Int) -> Bool {
        precondition(mr <= maxRows && h <= Int(Int32.max))
        var n = 0
        rowStart[0] = 0
        for i in 0..<mr {
            let row = z + i * h
            for j in 0..<h where row[j] != 0 {
                guard n < capacity else { count = 0; rows = 0; return false }
                unit[n] = Int32(j)
                value[n] = row[j]
                n += 1
            }
            rowStart[i + 1] = Int32(n)
        }
        count = n
        rows = mr
        return true
    }

    /// Row i's slot for a selection that fills rows at once, `room` entries each at i·room
    /// (`setCount(_:ofRow:)`, then `pack(rows:room:)`); `room` · rows must fit `capacity`.
    @inline(__always)
    func slot(ofRow i: Int, room: Int) -> (units: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<T>) {
        (unit + i * room, value + i * room)
    }

    /// Row i's slot holds n entries.
    @inline(__always)
    func setCount(_ n: Int, ofRow i: Int) { rowStart[i + 1] = Int32(n) }

    /// Packs the slots of rows 0..<mr (`slot(ofRow:room:)`) into compressed rows.
    func pack(rows mr: Int, room: Int) {
        precondition(mr <= maxRows && mr * room <= capacity, "ActiveUnits: no room for the rows")
        var n = 0
        rowStart[0] = 0
        for i in 0..<mr {
            let c = Int(rowStart[i + 1]), from = i * room
            if from != n {                              // n < from: a forward copy is safe
                for e in 0..<c { unit[n + e] = unit[from + e]; value[n + e] = value[from + e] }
            }
            n += c
            rowStart[i + 1] = Int32(n)
        }
        count = n
        rows = mr
    }

    /// Writes the entries into z (mr, h), zero elsewhere: the dense kernels' Z.
    func scatter(into z: UnsafeMutablePointer<T>, h: Int) {
        z.update(repeating: 0, count: rows * h)
        for i in 0..<rows {
            for e in entries(ofRow: i) { z[i * h + Int(unit[e])] = value[e] }
        }
    }

    /// The entries of row i: positions into `unit` and `value`.
    @inline(__always)
    func entries(ofRow i: Int) -> Range<Int> { Int(rowStart[i])..<Int(rowStart[i + 1]) }
}
