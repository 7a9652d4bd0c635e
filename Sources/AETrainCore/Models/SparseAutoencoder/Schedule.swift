/// The learning rate and λ at iteration i of a run of T iterations (0 ..< T), as factors of
/// `--lr` and `--lambda`. Functions of the iteration alone, so that a resumed run continues
/// them exactly:
///
///     warmup  w(i) = min(1, (i + 1) / N)          N = lrWarmup: lr/N at iteration 0, lr from N − 1 on
///     decay   c(i) = min(1, (T − i) / D)          D = round(lrDecay · T): the last D iterations
///                                                 fall linearly to lr/D at i = T − 1 (0 after it)
///     lr_i = lr · w(i) · c(i)                     λ_i = λ · min(1, (i + 1) / lambdaWarmup)
///
/// The decay is a fraction of the run's iterations as they are now: a resumed run given more
/// `--iterations` moves the decay to its new end (a run extended after its decay began has its
/// learning rate rise again to where the new schedule puts it).
extension ScheduleSettings {
    /// lr_i / lr.
    public func learningRateFactor(at i: Int, of iterations: Int) -> Double {
        var factor = 1.0
        if lrWarmup > 0, i + 1 < lrWarmup { factor = Double(i + 1) / Double(lrWarmup) }
        let d = decayIterations(of: iterations)
        if d > 0, iterations - i < d { factor *= Double(iterations - i) / Double(d) }
        return factor
    }

    /// λ_i / λ.
    public func lambdaFactor(at i: Int) -> Double {
        lambdaWarmup > 0 && i + 1 < lambdaWarmup ? Double(i + 1) / Double(lambdaWarmup) : 1
    }

    /// D, the iterations the decay spans.
    public func decayIterations(of iterations: Int) -> Int { Int((lrDecay * Double(iterations)).rounded()) }

    /// Whether the learning rate changes during a run, and λ.
    public var schedulesLearningRate: Bool { lrWarmup > 0 || lrDecay > 0 }
    public var schedulesLambda: Bool { lambdaWarmup > 0 }

    /// Non-negative step counts, a decay fraction in [0, 1]; a λ warmup needs a λ to warm up.
    public func validate(lambda: Double) throws {
        if lrWarmup < 0 { throw UserError("\(Setting.lrWarmup.marker) must be ≥ 0 iterations, got \(lrWarmup)") }
        if lambdaWarmup < 0 { throw UserError("\(Setting.lambdaWarmup.marker) must be ≥ 0 iterations, got \(lambdaWarmup)") }
        if !(lrDecay >= 0 && lrDecay <= 1) {
            throw UserError("\(Setting.lrDecay.marker) is the fraction of the iterations the learning rate decays over, in [0, 1]; got \(lrDecay)")
        }
        if lambdaWarmup > 0, lambda == 0 {
            throw UserError("\(Setting.lambdaWarmup.marker) warms λ up, but λ is 0: give ⟨lambda⟩ too")
        }
    }
}
