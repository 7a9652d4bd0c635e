/// How the ranks sum the gradient and apply Adam.
///
/// - allreduce: MPI_Allreduce of the whole gradient, then every rank applies Adam to all of θ
///   (two ranks on one node: the allreduce 0.43 ms and Adam 0.44 ms of a 3.0 ms step, Adam
///   slower than in one process because both ranks update the same 830k weights at once).
/// - shared memory: ranks on one node share θ, the moments and their gradients
///   (`ParameterStore.shared`); each adds the ranks' gradients over its own 1/P of θ and
///   updates that part alone. Nothing is copied and no update is repeated.
///
/// `auto` takes shared memory when every rank is on one node, except with `--deterministic`
/// (its fixed-order sums) or overlap (a non-blocking allreduce has nothing to overlap here).
public enum GradientSumMode: String, CaseIterable, Codable, Sendable {
    case auto, allreduce
    case sharedMemory = "shared-memory"

    /// True for shared memory. The same on every rank (all of its inputs are), so not collective.
    /// - ranks, ranksPerNode: the job's, and those on this rank's node (`Communicator.localSize`).
    public func resolve(ranks: Int, ranksPerNode: Int, deterministic: Bool, overlap: Bool) throws -> Bool {
        let oneNode = ranks > 1 && ranksPerNode == ranks
        switch self {
        case .allreduce: return false
        case .auto: return oneNode && !deterministic && !overlap
        case .sharedMemory:
            if deterministic {
                throw UserError("⟨gradient-sum⟩ shared-memory does not combine with ⟨deterministic⟩ (a resumed run keeps the flag it was started with): its sums go in a fixed order over MPI")
            }
            if overlap { throw UserError("⟨gradient-sum⟩ shared-memory does not combine with ⟨overlap⟩ always: there is no allreduce to overlap") }
            if ranks > 1, !oneNode {
                throw UserError("⟨gradient-sum⟩ shared-memory needs every rank on one node; these \(ranks) ranks span nodes (\(ranksPerNode) on this one): use auto or allreduce")
            }
            return ranks > 1
        }
    }

    /// `shared-memory` was asked for, the ranks could share memory, but the node had no room
    /// for the window (`Communicator.sharedSegment` returned nil).
    public static let noRoom = UserError("⟨gradient-sum⟩ shared-memory: no room for the shared window in /dev/shm (a container's is often 64 MB; Open MPI's osc_sm_backing_directory names another place); use auto, which then falls back to the allreduce, or allreduce")

    public func resolve(_ comm: Communicator, deterministic: Bool, overlap: Bool) throws -> Bool {
        try resolve(ranks: comm.size, ranksPerNode: comm.localSize, deterministic: deterministic, overlap: overlap)
    }
}
