/// A deterministic, seed-chosen set of examples that training never sees (`--eval-fraction`),
/// the same on every rank and for any number of ranks: the held-out rows, and the training
/// rows the batch sampler draws from (both global indices, ascending).
public struct HeldOutSplit: Equatable, Sendable {
    public let heldOut: [Int]
    /// Position p of the sampler's permutation is example `training[p]`.
    public let training: [Int32]

    /// round(fraction · N) examples chosen by a seeded shuffle of 0..<N.
    public init(examples n: Int, fraction: Double, seed: UInt64) {
        var order = (0..<n).map { $0 }
        var rng = Xoshiro256(seed: seed ^ 0x4845_4C44_4F55_5400)  // a stream of its own
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
        let count = Int((fraction * Double(n)).rounded())
        heldOut = order.prefix(count).sorted()
        training = order.dropFirst(count).sorted().map { Int32($0) }
    }

    /// `--eval-fraction` F with the run's seed: what decides the split once N is known.
    public struct Rule: Equatable, Sendable {
        public var fraction: Double
        public var seed: UInt64
        public init(fraction: Double, seed: UInt64) { self.fraction = fraction; self.seed = seed }
    }

    /// The split of `rule` over N examples; refused when it holds out none.
    public init(examples n: Int, rule: Rule) throws {
        self.init(examples: n, fraction: rule.fraction, seed: rule.seed)
        guard !heldOut.isEmpty else {
            throw UserError("⟨eval-fraction⟩ \(rule.fraction) of \(n) examples holds out none; give a larger fraction")
        }
    }

    /// The held-out examples inside `rows` (a rank's shard).
    public func heldOut(in rows: Range<Int>) -> [Int] { heldOut.filter { rows.contains($0) } }
}
