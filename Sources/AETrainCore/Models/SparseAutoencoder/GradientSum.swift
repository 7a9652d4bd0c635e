/// How the ranks sum the gradient and apply Adam.
///
/// - allreduce: MPI_Allreduce of the whole gradient, then every rank applies Adam to all of θ
///   (`AllreduceReduction`); on one node, the ranks all update the same weights at once.
/// - shared memory: the ranks of a node share θ, the moments and their gradients
///   (`ParameterStore.shared`, `SharedMemoryReduction`); each adds the node's gradients over its own 1/L of θ, and, on
///   several nodes, sums that part across the nodes with the ranks that own the same part; then
///   it updates that part alone. Nothing is copied within a node, no update is repeated there,
///   and each node sends its gradient over the network once, not once per rank.
///
/// `auto` takes shared memory when every node has the same number of ranks, two or more,
/// except with `--deterministic` (its fixed-order sums) or `--overlap always` (a non-blocking
/// allreduce of the whole gradient). It comes before `--overlap auto`, which then stays off.
public enum GradientSumMode: String, CaseIterable, Codable, Sendable {
    case auto, allreduce
    case sharedMemory = "shared-memory"

    /// True for shared memory.
    /// - ranks, ranksPerNode: the job's, and those on this rank's node (`Communicator.localSize`);
    ///   evenNodes: every node has `ranksPerNode` ranks (the same on every rank).
    public func resolve(ranks: Int, ranksPerNode: Int, evenNodes: Bool, deterministic: Bool, overlap: Bool) throws -> Bool {
        let possible = ranks > 1 && ranksPerNode > 1 && evenNodes
        switch self {
        case .allreduce: return false
        case .auto: return possible && !deterministic && !overlap
        case .sharedMemory:
            try check(deterministic: deterministic, overlapAlways: overlap)
            if ranks > 1, !evenNodes {
                throw UserError("⟨gradient-sum⟩ shared-memory needs the same number of ranks on every node; these \(ranks) ranks are spread unevenly: use auto or allreduce")
            }
            if ranks == 1 {
                throw UserError("⟨gradient-sum⟩ shared-memory needs 2 or more ranks on each node; a single process has no other rank to share with: use auto or allreduce")
            }
            if ranksPerNode < 2 {
                throw UserError("⟨gradient-sum⟩ shared-memory needs 2 or more ranks on each node; these \(ranks) ranks run one per node: use auto or allreduce")
            }
            return true
        }
    }

    /// The flags `shared-memory` does not combine with (train's and bench's validation, and
    /// `resolve`, where a resumed run may be deterministic without the flag).
    public func check(deterministic: Bool, overlapAlways: Bool) throws {
        guard self == .sharedMemory else { return }
        if deterministic {
            throw UserError("⟨gradient-sum⟩ shared-memory does not combine with ⟨deterministic⟩ (a resumed run keeps the flag it was started with): its sums go in a fixed order over MPI")
        }
        if overlapAlways { throw UserError("⟨gradient-sum⟩ shared-memory does not combine with ⟨overlap⟩ always: there is no allreduce to overlap") }
    }

    /// After the model is built: `shared-memory` was asked for and resolved, but the store did
    /// not get a window (no room where a node keeps shared memory) — an error; `auto` falls back.
    public func checkGranted(resolved sharedMemory: Bool, store: ParameterStore<Float>) throws {
        if self == .sharedMemory, sharedMemory, store.sharing == nil { throw Self.noRoom }
    }

    /// `noRoom`: `shared-memory` was asked for, the ranks could share memory, but a node had
    /// no room for the window (`Communicator.sharedSegment` returned nil).
    public static let noRoom = UserError("⟨gradient-sum⟩ shared-memory: no room for the shared window where Open MPI keeps it (/dev/shm unless osc_sm_backing_directory says otherwise; a container's is often 64 MB); use auto, which then falls back to the allreduce, or allreduce")

    /// Collective (one agreement on the ranks per node).
    public func resolve(_ comm: Communicator, deterministic: Bool, overlap: Bool) throws -> Bool {
        let even = try comm.allAgree(on: UInt64(comm.localSize))
        return try resolve(ranks: comm.size, ranksPerNode: comm.localSize, evenNodes: even, deterministic: deterministic, overlap: overlap)
    }
}
