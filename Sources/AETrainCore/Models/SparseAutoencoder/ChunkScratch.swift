/// The step's working buffers for one chunk of the batch (`BatchCut`), taken from the step's
/// arena: each starts on a 64-byte boundary, so a chunk is computed the same way in whichever
/// process and slot it lands.
final class ChunkScratch<T: BLASScalar> {
    let z: UnsafeMutablePointer<T>            // (rows, h) P, then Z
    let g: UnsafeMutablePointer<T>            // (rows, d) G
    let gz: UnsafeMutablePointer<T>           // (rows, h) dense path: G_Z, G_P
    let active: ActiveUnits<T>                // sparse path: Z's nonzeros
    /// This chunk's partial gradient, laid out as `ParameterStore.grads` (reducedCount):
    /// the first local chunk's is the store's own.
    let partial: UnsafeMutablePointer<T>
    // topk, batchtopk, jumprelu (one element each for relu):
    let pre: UnsafeMutablePointer<T>          // (rows, h) π
    let aux: ActiveUnits<T>                   // AuxK: S_i and relu(π) there, k_aux per row
    let ga: UnsafeMutablePointer<T>           // (rows, d) AuxK: ê − e, then Ga
    let columns: ActiveColumns<T>             // sparse path: `active` by unit (h + 1 and capacity; relu: none)
    let auxColumns: ActiveColumns<T>          // AuxK: `aux` by unit

    /// What an architecture adds: π kept (`pre`) and AuxK's k_aux (0: none).
    struct Extras { var pre = false; var kAux = 0 }

    /// Adds the buffers of `init` to `size`; `ownPartial`: false for the chunk that writes
    /// into the store's gradient.
    static func reserve(_ size: inout Arena.Size, rows: Int, shape: ModelShape, capacity: Int, reducedCount: Int, ownPartial: Bool,
                        extras: Extras = Extras()) {
        size.add(T.self, rows * shape.h); size.add(T.self, rows * shape.d); size.add(T.self, rows * shape.h)
        ActiveUnits<T>.reserve(&size, maxRows: rows, capacity: capacity)
        if ownPartial { size.add(T.self, reducedCount) }
        size.add(T.self, extras.pre ? rows * shape.h : 1)
        ActiveUnits<T>.reserve(&size, maxRows: rows, capacity: rows * extras.kAux)
        size.add(T.self, extras.kAux > 0 ? rows * shape.d : 1)
        ActiveColumns<T>.reserve(&size, h: extras.pre ? shape.h : 0, capacity: extras.pre ? capacity : 0)
        ActiveColumns<T>.reserve(&size, h: extras.kAux > 0 ? shape.h : 0, capacity: rows * extras.kAux)
    }

    init(rows: Int, shape: ModelShape, capacity: Int, arena: Arena, partial store: UnsafeMutablePointer<T>?, reducedCount: Int,
         extras: Extras = Extras()) {
        z = arena.take(T.self, rows * shape.h)
        g = arena.take(T.self, rows * shape.d)
        gz = arena.take(T.self, rows * shape.h)
        active = ActiveUnits(maxRows: rows, capacity: capacity, arena: arena)
        partial = store ?? arena.take(T.self, reducedCount)
        pre = arena.take(T.self, extras.pre ? rows * shape.h : 1)
        aux = ActiveUnits(maxRows: rows, capacity: rows * extras.kAux, arena: arena)
        ga = arena.take(T.self, extras.kAux > 0 ? rows * shape.d : 1)
        columns = ActiveColumns(h: extras.pre ? shape.h : 0, capacity: extras.pre ? capacity : 0, arena: arena)
        auxColumns = ActiveColumns(h: extras.kAux > 0 ? shape.h : 0, capacity: rows * extras.kAux, arena: arena)
    }
}
