/// A call of a `Communicator` failed: a peer died, its host was cut off, or the transport
/// itself failed. The ranks are then in different places and cannot agree on anything, so this
/// error is never turned into a collective one; the rank that sees it reports it and ends.
public struct CommunicationFailure: Error, CustomStringConvertible, Equatable {
    /// The failed call, e.g. `MPI_Allreduce`.
    public let call: String
    public let rank: Int
    /// What the transport said (MPI's error string).
    public let reason: String

    public init(call: String, rank: Int, reason: String) {
        self.call = call
        self.rank = rank
        self.reason = reason
    }

    /// One line, printed by the rank that saw the failure.
    public var description: String { "\(call) failed on rank \(rank): \(reason); a peer may have died or become unreachable" }
}
