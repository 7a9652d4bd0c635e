/// Shape letters used throughout:
///   m  examples in the global batch        mr  of them on this rank
///   d  pixels per example (H·W)            h   hidden units
public struct ModelShape: Equatable, Codable, Sendable {
    public var d: Int
    public var h: Int
    public init(d: Int, h: Int) { self.d = d; self.h = h }
}

/// Where each tensor sits in the flat parameter buffer. Gradients and both Adam moments use
/// the same layout, so one allreduce sums every gradient and one loop updates every weight.
///
///     V  (d, h)   encoder weights     offset 0
///     W  (h, d)   decoder weights     offset d·h
///     b  (h)      encoder bias        offset 2·d·h
///     a  (d)      decoder bias        offset 2·d·h + h
public struct ParameterLayout: Equatable, Sendable {
    public let shape: ModelShape
    public var V: Range<Int> { 0..<(shape.d * shape.h) }
    public var W: Range<Int> { V.upperBound..<(V.upperBound + shape.h * shape.d) }
    public var b: Range<Int> { W.upperBound..<(W.upperBound + shape.h) }
    public var a: Range<Int> { b.upperBound..<(b.upperBound + shape.d) }
    public var count: Int { a.upperBound }
    public init(_ shape: ModelShape) { self.shape = shape }
}

/// Partial sums that ride along with the gradients in the step's one fused allreduce:
/// they sit right after the gradients in the same buffer.
public enum ReducedTerm: Int, CaseIterable {
    /// Σ_i ‖x_i − x̂_i‖² over this rank's part of the batch.
    case squaredError
    /// Σ_i ‖z_i‖₁ over this rank's part of the batch.
    case activationSum
    /// Σ_i ‖z_i‖₀, the number of active units, over this rank's part of the batch.
    case activeCount
    /// Σ_i ‖x_i‖² over this rank's part of the batch (the data are centred: SST about the mean).
    case squaredNorm
    /// 1 on a rank that received SIGTERM or SIGINT: after the sum, every rank knows whether
    /// any rank was asked to stop, at no extra communication.
    case stopRequest
}

/// Parameters, gradients (+ the reduced terms) and Adam's two moments: four flat arrays
/// in one allocation, laid out by `ParameterLayout`.
///
/// This type owns the memory; the pointers it hands out are valid for its lifetime.
public final class ParameterStore<T: BLASScalar> {
    public let layout: ParameterLayout
    /// Length of the gradient array: the parameters plus the reduced terms.
    public var reducedCount: Int { layout.count + ReducedTerm.allCases.count }

    private let storage: UnsafeMutableBufferPointer<T>
    /// θ (layout.count)
    public let params: UnsafeMutablePointer<T>
    /// ∂loss/∂θ (layout.count), followed by the `ReducedTerm` sums.
    public let grads: UnsafeMutablePointer<T>
    /// Adam's first moment (layout.count)
    public let moment1: UnsafeMutablePointer<T>
    /// Adam's second moment (layout.count)
    public let moment2: UnsafeMutablePointer<T>
    /// Adam steps taken so far.
    public var step: Int = 0

    public init(layout: ParameterLayout) {
        self.layout = layout
        let n = layout.count
        let total = 4 * n + ReducedTerm.allCases.count
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0)
        let base = storage.baseAddress!  // allocate(capacity:) with total > 0 never returns nil
        params = base
        grads = base + n
        moment1 = base + 2 * n + ReducedTerm.allCases.count
        moment2 = moment1 + n
    }

    deinit { storage.deallocate() }

    // Named views into θ and its gradient.
    public var V: UnsafeMutablePointer<T> { params + layout.V.lowerBound }
    public var W: UnsafeMutablePointer<T> { params + layout.W.lowerBound }
    public var b: UnsafeMutablePointer<T> { params + layout.b.lowerBound }
    public var a: UnsafeMutablePointer<T> { params + layout.a.lowerBound }
    public var dV: UnsafeMutablePointer<T> { grads + layout.V.lowerBound }
    public var dW: UnsafeMutablePointer<T> { grads + layout.W.lowerBound }
    public var db: UnsafeMutablePointer<T> { grads + layout.b.lowerBound }
    public var da: UnsafeMutablePointer<T> { grads + layout.a.lowerBound }

    public func reduced(_ term: ReducedTerm) -> T { grads[layout.count + term.rawValue] }
    public func setReduced(_ term: ReducedTerm, _ value: T) { grads[layout.count + term.rawValue] = value }

    /// The parameters as a buffer (layout.count elements).
    public var parameterBuffer: UnsafeMutableBufferPointer<T> { .init(start: params, count: layout.count) }
    public func tensor(_ range: Range<Int>) -> UnsafeBufferPointer<T> { .init(start: params + range.lowerBound, count: range.count) }

    /// FNV-1a over the parameters' bit patterns: equal on all ranks iff they hold the same θ.
    public func checksum() -> UInt64 {
        FNV1a.hash(UnsafeRawBufferPointer(start: params, count: layout.count * MemoryLayout<T>.stride))
    }

    /// True when every parameter is finite.
    public func parametersAreFinite() -> Bool {
        for i in 0..<layout.count where !params[i].isFinite { return false }
        return true
    }
}
