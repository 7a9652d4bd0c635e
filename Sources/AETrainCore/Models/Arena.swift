/// One allocation for a model's scratch buffers, handed out as typed views, as llm.c's
/// `malloc_and_point`: sized once from the model and the batch (`Size`), zeroed, freed with
/// the model. Nothing in a training step allocates.
public final class Arena {
    /// The bytes a set of buffers needs, each aligned to `alignment`.
    public struct Size {
        public private(set) var bytes = 0
        public init() {}
        /// Room for `count` values of `T` (at least one, so that every view has an address).
        public mutating func add<T>(_: T.Type, _ count: Int) {
            bytes = Arena.aligned(bytes) + MemoryLayout<T>.stride * max(1, count)
        }
    }

    /// Enough for any element type used here, and a cache line.
    static let alignment = 64
    static func aligned(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }

    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private var used = 0
    /// The shared segment the views point into (`init(_:in:)`); nil: this arena owns its memory.
    private let segment: SharedSegment?

    public init(_ size: Size) {
        capacity = max(1, size.bytes)
        base = .allocate(byteCount: capacity, alignment: Self.alignment)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        segment = nil
    }

    /// Views into memory that every rank shares (`Communicator.sharedSegment`, zero-filled,
    /// at least `size.bytes` long), kept alive with the arena.
    public init(_ size: Size, in segment: SharedSegment) {
        capacity = max(1, size.bytes)
        base = segment.base
        self.segment = segment
    }

    deinit { if segment == nil { base.deallocate() } }

    /// The next `count` values of `T`, zero, in the order they were added to the `Size`.
    /// Valid for the arena's lifetime.
    public func take<T>(_: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let offset = Self.aligned(used)
        used = offset + MemoryLayout<T>.stride * max(1, count)
        precondition(used <= capacity, "arena overrun: the buffers taken differ from the Size")
        return (base + offset).bindMemory(to: T.self, capacity: max(1, count))
    }
}
