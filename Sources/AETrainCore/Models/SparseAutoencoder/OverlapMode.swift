/// When the step overlaps the decoder's allreduce with the encoder's backward pass.
///
/// Open MPI moves a non-blocking allreduce only inside MPI calls, and only a core that is not
/// computing can move the bytes meanwhile. Measured (docs/performance.md, "Hiding communication"): where
/// every core of a node computes, overlap made the step slower, on shared memory and across
/// hosts over TCP. Hence `auto`: overlap only when the ranks span several nodes *and* every
/// rank's node has a core to spare (fewer ranks on it than usable cores).
public enum OverlapMode: String, CaseIterable, Codable, Sendable {
    case auto, always, never

    /// The decision on one rank. `ranks`: the job's; `ranksPerNode`: those sharing this
    /// rank's node (MPI's shared-memory communicator); `cores`: the cores this rank may run on
    /// (`NodeCores.usable()`: its affinity, capped by a cgroup quota).
    public func decide(ranks: Int, ranksPerNode: Int, cores: Int) -> Bool {
        switch self {
        case .always: true
        case .never: false
        case .auto: ranks > ranksPerNode && cores > ranksPerNode
        }
    }

    /// The decision every rank takes: `auto` overlaps only if it would on every rank (the ranks
    /// must run the same collectives). Collective for `auto`; call on every rank, once.
    public func resolve(_ comm: Communicator, cores: Int = NodeCores.usable()) throws -> Bool {
        guard self == .auto else { return decide(ranks: comm.size, ranksPerNode: comm.localSize, cores: cores) }
        let mine: UInt64 = decide(ranks: comm.size, ranksPerNode: comm.localSize, cores: cores) ? 1 : 0
        return try comm.allreduce(mine, op: .min) == 1
    }
}
