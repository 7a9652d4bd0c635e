import Foundation

/// Fault injection for the end-to-end tests, set only by the command line's hidden `--debug-*`
/// flags. Nothing in a production protocol serves it: a model takes part in the drift test
/// by conforming to `TestDrift` in a `+TestHooks.swift` file of its folder.
public struct TestHooks: Equatable {
    /// This rank drifts its parameters after the first iteration (the ranks' checksum check must catch it).
    public var perturbRank: Int?
    /// This rank sends itself SIGTERM when `signalAt` iterations are done.
    public var signalRank: Int?
    public var signalAt: Int?
    /// Every rank writes the checksum of its parameters to `checksum.rank<r>` at the end.
    public var rankChecksums = false
    public init() {}
}

/// Test-only: a model whose parameters can be made to drift a little on one rank
/// (`TestHooks.perturbRank`). A model that does not conform has nothing to drift (PCA).
protocol TestDrift: AnyObject {
    func perturb()
}

extension RunSession {
    /// After `done` iterations: the drift and the signal asked for by `plan.testHooks`.
    func applyTestHooks(after done: Int) {
        let hooks = plan.testHooks
        if hooks.perturbRank == comm.rank, done == 1 { (model as? TestDrift)?.perturb() }
        if hooks.signalRank == comm.rank, hooks.signalAt == done { StopRequest.raise(SIGTERM) }
    }

    /// At the end: every rank's checksum in `checksum.rank<r>` (`TestHooks.rankChecksums`).
    func writeTestChecksums() throws {
        guard plan.testHooks.rankChecksums else { return }
        let file = directory.appendingPathComponent("checksum.rank\(comm.rank)")
        try comm.collectively { try DurableFile.write(Data(String(model.checksum(), radix: 16).utf8), to: file) }
    }
}
