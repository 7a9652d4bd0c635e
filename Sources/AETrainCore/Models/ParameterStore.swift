/// Shape letters used throughout:
///   m  examples in the global batch        mr  of them on this rank
///   d  pixels per example (H·W)            h   hidden units
public struct ModelShape: Equatable, Codable, Sendable {
    public var d: Int
    public var h: Int
    public init(d: Int, h: Int) { self.d = d; self.h = h }
}

/// Where each tensor sits in the flat parameter buffer, as llm.c's table of sizes and offsets.
/// Gradients and both Adam moments use the same layout, so one allreduce sums every gradient
/// and one loop updates every weight.
///
/// The sparse autoencoder's (`init(_:)`):
///
///     V  (d, h)   encoder weights     offset 0
///     W  (h, d)   decoder weights     offset d·h
///     b  (h)      encoder bias        offset 2·d·h
///     a  (d)      decoder bias        offset 2·d·h + h
public struct ParameterLayout: Equatable, Sendable {
    /// One tensor: its name, shape and place in the buffer.
    public struct Tensor: Equatable, Sendable {
        public var name: String
        public var shape: [Int]
        public var range: Range<Int>
    }
    /// d and h of the model (what checkpoints record).
    public let shape: ModelShape
    public let tensors: [Tensor]
    public var count: Int { tensors.last?.range.upperBound ?? 0 }

    /// Tensors back to back in the given order.
    public init(shape: ModelShape, tensors: [(name: String, shape: [Int])]) {
        self.shape = shape
        var offset = 0
        self.tensors = tensors.map { t in
            let n = t.shape.reduce(1, *)
            defer { offset += n }
            return Tensor(name: t.name, shape: t.shape, range: offset..<(offset + n))
        }
    }

    /// The sparse autoencoder's layout: V, W, b, a; with `threshold`, jumprelu's θ (h) after them.
    public init(_ shape: ModelShape, threshold: Bool = false) {
        self.init(shape: shape, tensors: [("V", [shape.d, shape.h]), ("W", [shape.h, shape.d]), ("b", [shape.h]), ("a", [shape.d])]
                  + (threshold ? [("threshold", [shape.h])] : []))
    }

    // The sparse autoencoder's tensors, by position in `init(_:)`.
    public var V: Range<Int> { tensors[0].range }
    public var W: Range<Int> { tensors[1].range }
    public var b: Range<Int> { tensors[2].range }
    public var a: Range<Int> { tensors[3].range }
}

/// Partial sums that ride along with the gradients in the step's one fused allreduce (or, in
/// a shared store, in each rank's gradient slot): they sit right after the gradients.
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
/// in one allocation, laid out by `ParameterLayout` (shared: one window for the node's ranks).
/// It owns the memory only: the reductions (`GradientReduction`) sum into it and update it.
///
/// Shared (`shared(layout:reducedSlots:comm:)`, L ≥ 2 ranks on each node): θ and both moments
/// exist once per node, in memory the node's ranks map, next to each of their partial gradients:
///
///     θ (n) | m (n) | v (n) | local rank 0's gradient (n + reduced) | … | local rank L−1's
///
/// Each rank writes only its own gradient; after a `synchronize` it sums the L gradients over
/// its `owned` 1/L of the parameters (on several nodes, then across the nodes, among the ranks
/// that own the same part) and Adam-updates that part alone, which ends with the next
/// `synchronize` (`SharedMemoryReduction`). No copies, and no rank repeats another's update. During set-up
/// every rank writes the same values (initial θ, a checkpoint), and `needsSynchronize` makes
/// the first step wait for all of them.
///
/// The pointers it hands out are valid for its lifetime: it owns its memory, or, shared, holds
/// the communicator's segment (freed at MPI_Finalize).
public final class ParameterStore<T: BLASScalar> {
    public let layout: ParameterLayout
    /// Slots after the gradients that ride along in the gradient's reduction.
    public let reducedSlots: Int
    /// Length of the gradient array: the parameters plus the reduced slots.
    public var reducedCount: Int { layout.count + reducedSlots }

    private let storage: Arena
    /// θ (layout.count)
    public let params: UnsafeMutablePointer<T>
    /// ∂loss/∂θ (layout.count), followed by the `ReducedTerm` sums. Shared: this rank's
    /// partial gradient and partial sums (the update reads every rank's; none is summed in place).
    public let grads: UnsafeMutablePointer<T>
    /// Adam's first moment (layout.count)
    public let moment1: UnsafeMutablePointer<T>
    /// Adam's second moment (layout.count)
    public let moment2: UnsafeMutablePointer<T>
    /// Adam steps taken so far (Adam's t).
    public var adamSteps: Int = 0

    /// The ranks that share this store's memory; nil: this rank's own.
    public let sharing: Sharing?
    /// The reduced terms as `reduced(_:)` reads them: after the gradients (summed there by the
    /// allreduce), or, shared, this rank's own copy of their sums (`SharedMemoryReduction`).
    let sums: UnsafeMutablePointer<T>
    /// Shared: some rank may still read what this rank is about to write (or write what it is
    /// about to read); the step synchronizes first.
    public var needsSynchronize = false

    /// How a shared store is split between the ranks of a node.
    public struct Sharing {
        public let segment: SharedSegment
        /// This rank's index on its node, and the node's ranks.
        public let rank: Int
        public let ranks: Int
        /// Nodes, each with its own copy of the store.
        public let nodes: Int
        /// Rank 0's gradient; rank q's is `slotStride · q` further.
        let slots: UnsafeMutablePointer<T>
        let slotStride: Int
        /// The parameters this rank sums and updates: rank/ranks of them, cut on 16-element
        /// (64-byte) boundaries.
        public let owned: Range<Int>
    }

    /// - reducedSlots: partial sums carried after the gradients (the sparse autoencoder's
    ///   `ReducedTerm`s by default).
    public convenience init(layout: ParameterLayout, reducedSlots: Int = ReducedTerm.allCases.count) {
        self.init(layout: layout, reducedSlots: reducedSlots, segment: nil, rank: 0, ranks: 1, nodes: 1)
    }

    /// A store shared by the ranks of each node of `comm` when they can share memory (the same
    /// number, 2 or more, on every node); otherwise this rank's own. Collective.
    /// - rowsOf: a tensor of rows `length` elements long (W with unit-norm rows) whose rows
    ///   must each be owned by one rank: the cuts inside it move to the nearest row boundary.
    public static func shared(layout: ParameterLayout, reducedSlots: Int = ReducedTerm.allCases.count,
                              rowsOf rows: (range: Range<Int>, length: Int)? = nil,
                              comm: Communicator) throws -> ParameterStore {
        let n = layout.count, local = comm.localSize
        var size = Arena.Size()
        for _ in 0..<3 { size.add(T.self, n) }
        for _ in 0..<local { size.add(T.self, n + reducedSlots) }
        guard comm.size > 1, let segment = try comm.sharedSegment(bytes: size.bytes) else {
            return ParameterStore(layout: layout, reducedSlots: reducedSlots)
        }
        return ParameterStore(layout: layout, reducedSlots: reducedSlots, segment: segment, rank: comm.localRank, ranks: local,
                              nodes: comm.size / local, rows: rows)
    }

    private init(layout: ParameterLayout, reducedSlots: Int, segment: SharedSegment?, rank: Int, ranks: Int, nodes: Int,
                 rows: (range: Range<Int>, length: Int)? = nil) {
        self.layout = layout
        self.reducedSlots = reducedSlots
        let n = layout.count
        guard let segment else {
            let total = 4 * n + reducedSlots
            // One arena, 64-byte aligned: OpenBLAS's level-1 reductions (dot for reg) then take the
            // same path in every process, so logged terms reproduce, not only the trajectory.
            var size = Arena.Size()
            size.add(T.self, total)
            storage = Arena(size)
            let base = storage.take(T.self, total)
            params = base
            grads = base + n
            sums = grads + n
            moment1 = base + 2 * n + reducedSlots
            moment2 = moment1 + n
            sharing = nil
            return
        }
        var size = Arena.Size()
        for _ in 0..<3 { size.add(T.self, n) }
        for _ in 0..<ranks { size.add(T.self, n + reducedSlots) }
        storage = Arena(size, in: segment)
        params = storage.take(T.self, n)
        moment1 = storage.take(T.self, n)
        moment2 = storage.take(T.self, n)
        let slots = storage.take(T.self, n + reducedSlots)
        for _ in 1..<ranks { _ = storage.take(T.self, n + reducedSlots) }
        let stride = Arena.aligned((n + reducedSlots) * MemoryLayout<T>.stride) / MemoryLayout<T>.stride
        grads = slots + rank * stride
        sums = .allocate(capacity: max(1, reducedSlots))
        sums.initialize(repeating: 0, count: max(1, reducedSlots))
        func cut(_ q: Int) -> Int {
            let c = q == ranks ? n : n * q / ranks / 16 * 16
            guard let rows, rows.range.contains(c) else { return c }
            let r = rows.range.lowerBound
            return r + Int((Double(c - r) / Double(rows.length)).rounded()) * rows.length
        }
        sharing = Sharing(segment: segment, rank: rank, ranks: ranks, nodes: nodes, slots: slots, slotStride: stride,
                          owned: cut(rank)..<cut(rank + 1))
        needsSynchronize = true
    }

    deinit { if sharing != nil { sums.deallocate() } }

    // Named views into θ and its gradient.
    public var V: UnsafeMutablePointer<T> { params + layout.V.lowerBound }
    public var W: UnsafeMutablePointer<T> { params + layout.W.lowerBound }
    public var b: UnsafeMutablePointer<T> { params + layout.b.lowerBound }
    public var a: UnsafeMutablePointer<T> { params + layout.a.lowerBound }
    public var dV: UnsafeMutablePointer<T> { grads + layout.V.lowerBound }
    public var dW: UnsafeMutablePointer<T> { grads + layout.W.lowerBound }
    public var db: UnsafeMutablePointer<T> { grads + layout.b.lowerBound }
    public var da: UnsafeMutablePointer<T> { grads + layout.a.lowerBound }

    public func reduced(_ term: ReducedTerm) -> T { reduced(slot: term.rawValue) }
    public func setReduced(_ term: ReducedTerm, _ value: T) { setReduced(slot: term.rawValue, value) }
    /// A reduced term after the reduction.
    public func reduced(slot: Int) -> T { sums[slot] }
    /// This rank's partial sum of a reduced term, before the reduction.
    public func setReduced(slot: Int, _ value: T) { grads[layout.count + slot] = value }
    /// The gradient of the tensor named `name` (a programmer error if there is none).
    public func gradient(_ name: String) -> UnsafeMutablePointer<T> { grads + range(name).lowerBound }
    public func parameter(_ name: String) -> UnsafeMutablePointer<T> { params + range(name).lowerBound }
    func range(_ name: String) -> Range<Int> {
        guard let t = layout.tensors.first(where: { $0.name == name }) else { preconditionFailure("no tensor \(name)") }
        return t.range
    }

    /// The values of the tensor named `name`, as an array (outputs).
    public func values(_ name: String) -> [T] { Array(UnsafeBufferPointer(start: params + range(name).lowerBound, count: range(name).count)) }

    /// Parameters and both moments, in `layout` order (checkpoints).
    public func state() -> (parameters: [T], moment1: [T], moment2: [T]) {
        let n = layout.count
        return (Array(UnsafeBufferPointer(start: params, count: n)), Array(UnsafeBufferPointer(start: moment1, count: n)),
                Array(UnsafeBufferPointer(start: moment2, count: n)))
    }

    /// Restores what `state()` returned, and the Adam step count.
    public func restore(parameters: [T], moment1 m: [T], moment2 v: [T], adamSteps t: Int) {
        precondition(parameters.count == layout.count && m.count == layout.count && v.count == layout.count)
        for i in 0..<layout.count { params[i] = parameters[i]; moment1[i] = m[i]; moment2[i] = v[i] }
        adamSteps = t
        needsSynchronize = sharing != nil
    }

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
