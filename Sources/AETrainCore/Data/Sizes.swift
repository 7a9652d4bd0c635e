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
    /// size. Model constructors call this before they size anything from h.
    public init(checkingD d: Int, h: Int) throws {
        _ = try Sizes.product([4, 2, d, h], naming: "⟨hidden⟩ \(h) with d = \(d) pixels")
        self.init(d: d, h: h)
    }
}
