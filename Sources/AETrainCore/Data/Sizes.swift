/// Products of sizes that come from outside (file headers, flags, data specs), checked.
///
/// The core is built with overflow checks, so a wrapped product would trap; a size the user
/// chose must instead end in one line that names it. Every product of input-derived sizes
/// goes through `product(_:naming:)` before it sizes anything.
public enum Sizes {
    /// The product of `factors`, or a `UserError` "`what` is too large: a × b × … overflows a
    /// 64-bit integer" when it does not fit in an `Int`.
    public static func product(_ factors: [Int], naming what: @autoclosure () -> String) throws -> Int {
        var total = 1
        for f in factors {
            let (t, overflow) = total.multipliedReportingOverflow(by: f)
            guard !overflow else {
                throw UserError("\(what()) is too large: \(factors.map(String.init).joined(separator: " × ")) overflows a 64-bit integer")
            }
            total = t
        }
        return total
    }

    /// The most values one BLAS or MPI call takes: both count in 32-bit integers (OpenBLAS's
    /// `blasint`, MPI's `int`), as do the batch sampler's example indices.
    public static let maxCount = Int(Int32.max)

    /// The product of `factors` when it is at most `maxCount`; otherwise a `UserError` naming
    /// `what`. For a buffer that one BLAS or MPI call covers whole.
    public static func count(_ factors: [Int], naming what: @autoclosure () -> String) throws -> Int {
        let n = try product(factors, naming: what())
        guard n <= maxCount else {
            let product = factors.count > 1 ? factors.map(String.init).joined(separator: " × ") + " = " : ""
            throw UserError("\(what()) is too large: \(product)\(n) values, beyond the \(maxCount) one BLAS or MPI call takes")
        }
        return n
    }
}

extension ImageShape {
    /// H·W, checked (`pixels` wraps nothing only once this has passed): `what` names the input.
    public func checkedPixels(naming what: @autoclosure () -> String) throws -> Int {
        try Sizes.product([height, width], naming: what())
    }
}

extension ModelShape {
    /// A model of `h` units on `d`-pixel data whose weight matrix (h·d values), and the four
    /// copies of it that parameters, gradients and Adam's moments make, have a representable
    /// size. Model constructors call this before they size anything from h, then
    /// `MemoryBudget.check`, then `checkCounts()`.
    public init(checkingD d: Int, h: Int) throws {
        _ = try Sizes.product([4, 2, d, h], naming: "⟨hidden⟩ \(h) with d = \(d) pixels")
        self.init(d: d, h: h)
    }

    /// Checks that both weight matrices, their biases and a few reduced sums fit in one BLAS
    /// or MPI call (`Sizes.maxCount`): the gradient is reduced in one allreduce.
    public func checkCounts() throws {
        _ = try Sizes.count([2 * d * h + d + h + 16], naming: "⟨hidden⟩ \(h) with d = \(d) pixels (2·h·d + h + d parameters)")
    }
}
