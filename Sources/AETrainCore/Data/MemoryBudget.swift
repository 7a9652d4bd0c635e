import Foundation

/// Bytes a set of buffers will take, estimated before any of them is allocated.
///
/// In `Double`, so that no product of sizes can wrap however large the input: once an
/// estimate has passed `MemoryBudget.check`, every count it was made of fits in the rank's
/// memory, hence in an `Int`.
public struct MemoryEstimate {
    public private(set) var bytes: Double = 0
    public init() {}
    /// Room for `counts[0] · counts[1] · …` values of `T`.
    public mutating func add<T>(_: T.Type, _ counts: Int...) {
        bytes += counts.reduce(Double(MemoryLayout<T>.stride)) { $0 * Double($1) }
    }
    /// Bytes already held (the data shard, while a model is made).
    public mutating func add(bytes more: Int) { bytes += Double(more) }
}

/// What one rank may allocate, and the check every large allocation makes first, so that a
/// size too large for this node ends in one line — what is needed, what is available and the
/// flag to change — not in "Fatal error: failed to allocate" and a trace (nor in the OOM
/// killer).
///
/// A rank may use `limit` (⟨max-memory⟩) if set, else this node's physical memory (or its
/// cgroup's limit, if lower) divided by the ranks on this node.
public enum MemoryBudget {
    /// Bytes per rank from ⟨max-memory⟩, set once before a command runs; nil: the node's
    /// memory shared by its ranks.
    nonisolated(unsafe) public static var limit: Int?

    /// Physical memory of this node, or its cgroup's memory limit when that is lower.
    public static var nodeMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        var bytes = pages > 0 && pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : Int.max
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let cgroup = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), cgroup > 0 {
                bytes = min(bytes, cgroup)
            }
        }
        return bytes
    }

    /// Bytes this rank may use, and where that figure comes from (for messages).
    public static func available(comm: Communicator) -> (bytes: Int, source: String) {
        if let limit { return (limit, "⟨max-memory⟩") }
        let node = nodeMemory, ranks = max(1, comm.localSize)
        return ranks == 1 ? (node, "this node's memory") : (node / ranks, "\(format(Double(node))) / \(ranks) ranks on this node")
    }

    /// Throws a `UserError` when `estimate` exceeds what this rank may use:
    /// "needs 60.4 GiB for the 90000×90000 covariance but this rank can use 12.0 GiB
    /// (24.0 GiB / 2 ranks on this node); use fewer ranks per node or ⟨max-memory⟩".
    public static func check(_ estimate: MemoryEstimate, for what: @autoclosure () -> String, comm: Communicator) throws {
        let (bytes, source) = available(comm: comm)
        guard estimate.bytes > Double(bytes) else { return }
        let advice = limit != nil ? "raise ⟨max-memory⟩ if the node has more"
            : comm.localSize > 1 ? "use fewer ranks per node or ⟨max-memory⟩" : "use a smaller size, or ⟨max-memory⟩ to allow more"
        throw UserError("needs \(format(estimate.bytes)) for \(what()) but this rank can use \(format(Double(bytes))) (\(source)); \(advice)")
    }

    /// Binary units, one decimal: "512.0 MiB", "60.4 GiB", "18.6 TiB".
    public static func format(_ bytes: Double) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = bytes, unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(Int(value)) bytes" : String(format: "%.1f %@", value, units[unit])
    }

    /// Parses a byte count: `8G`, `512M`, `1.5T`, `64k`, with an optional `iB` or `B`
    /// (binary units, as Slurm's `--mem`), or plain bytes. Nil when malformed, not positive
    /// or beyond `Int`.
    public static func parse(_ text: String) -> Int? {
        var s = Substring(text.trimmingCharacters(in: .whitespaces)).uppercased()[...]
        if s.hasSuffix("IB") { s = s.dropLast(2) } else if s.hasSuffix("B") { s = s.dropLast() }
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40, "P": 50]
        var shift = 0
        if let last = s.last, let k = shifts[last] { shift = k; s = s.dropLast() }
        if shift == 0, let bytes = Int(s) { return bytes > 0 ? bytes : nil }
        guard let value = Double(s), value.isFinite, value > 0 else { return nil }
        let bytes = (value * Double(1 << shift)).rounded(.down)
        guard bytes >= 1, bytes < 9.2e18 else { return nil }
        return Int(bytes)
    }
}
