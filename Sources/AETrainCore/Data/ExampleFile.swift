/// A file of examples that each rank reads by rows: `.npy` or one tensor of a `.safetensors`
/// file. Its first dimension counts the examples.
protocol ExampleFile: AnyObject {
    var path: String { get }
    var shape: [Int] { get }
    /// The element type as recorded in config.json ("<f4", "F16", …).
    var dtype: String { get }
    /// Whether an N×H×W array is read as images without ⟨image-shape⟩ (see `ExampleLayout`).
    var threeDimensionalImages: Bool { get }
    /// Rows `rows` as float32 into `out` (rows.count × row length), in bounded chunks.
    func readRows(_ rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws
}

extension NPYReader: ExampleFile {
    var shape: [Int] { header.shape }
    var dtype: String { header.element.rawValue }
    var threeDimensionalImages: Bool { true }
}

extension SafeTensorsReader: ExampleFile {
    var dtype: String { element.rawValue }
    var threeDimensionalImages: Bool { false }
}
