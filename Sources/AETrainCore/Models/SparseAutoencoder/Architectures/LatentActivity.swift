/// How long each latent has gone without firing over the global batch, read from the
/// reduced column sums (the same on every rank): the dead latents AuxK reconstructs with and
/// the logged dead count (topk, batchtopk, jumprelu).
///
/// A latent is dead once it has not fired (z_ij ≠ 0 for no example of the global batch) for
/// ⟨dead-steps⟩ steps: its counter is ≥ ⟨dead-steps⟩. The mask a step uses is the one from
/// before that step's batch; the counters then count the batch. A latent that never fired in
/// the run has a counter equal to the steps taken. The counters are part of the checkpoint.
public final class LatentActivity {
    public let h: Int
    public let deadSteps: Int
    /// Steps recorded so far (the iteration after a restore).
    public private(set) var steps = 0
    /// The dead latents of the current step (before its batch), and how many.
    public private(set) var deadCount = 0
    private let storage: Arena
    let stepsSinceFired: UnsafeMutablePointer<Int32>  // (h)
    let dead: UnsafeMutablePointer<Bool>              // (h)

    public init(h: Int, deadSteps: Int) {
        self.h = h
        self.deadSteps = deadSteps
        var size = Arena.Size()
        size.add(Int32.self, h); size.add(Bool.self, h)
        storage = Arena(size)
        stepsSinceFired = storage.take(Int32.self, h)
        dead = storage.take(Bool.self, h)
    }

    /// One step's batch: the dead mask from the counters so far, then the counters moved on
    /// by `columnSums` (h, Σ_i |z_ij| over the global batch).
    func record<T: BLASScalar>(columnSums: UnsafePointer<T>) {
        var n = 0
        for j in 0..<h {
            let isDead = Int(stepsSinceFired[j]) >= deadSteps
            dead[j] = isDead
            if isDead { n += 1 }
            stepsSinceFired[j] = columnSums[j] > 0 ? 0 : (stepsSinceFired[j] == Int32.max ? Int32.max : stepsSinceFired[j] + 1)
        }
        deadCount = n
        steps += 1
    }

    /// Latents that fired in none of the last ⟨dead-steps⟩ steps (now).
    public var deadNow: Int { (0..<h).filter { Int(stepsSinceFired[$0]) >= deadSteps }.count }
    /// Latents that have fired in no step of the run.
    public var neverFired: Int { (0..<h).filter { Int(stepsSinceFired[$0]) >= steps }.count }

    /// The counters, for the checkpoint.
    public var counters: [Int32] { Array(UnsafeBufferPointer(start: stepsSinceFired, count: h)) }

    /// Continues from a checkpoint's counters after `steps` steps.
    public func restore(counters: [Int32], steps: Int) {
        precondition(counters.count == h)
        for j in 0..<h { stepsSinceFired[j] = counters[j] }
        self.steps = steps
    }
}
