/// What one example of a data file is: a row of D values, and the image they form when the
/// data has an image shape (N×H×W arrays, ⟨image-shape⟩, LFW, synthetic images). Without
/// one, the run writes no image outputs (dataset.png, filters.png, mosaics).
public struct ExampleLayout: Equatable, Sendable {
    public var dimensions: Int
    public var imageShape: ImageShape?

    public init(dimensions: Int, imageShape: ImageShape?) { self.dimensions = dimensions; self.imageShape = imageShape }
    public init(image: ImageShape) { self.init(dimensions: image.pixels, imageShape: image) }

    /// The layout of a file's array `shape` (its first dimension counts the examples):
    ///
    ///  - N×D: rows of D values; with `given` (⟨image-shape⟩) they are H×W images, H·W = D.
    ///  - N×H×W: images, when `threeDimensionalImages` (`.npy`, aetrain's own image layout).
    ///    Otherwise (safetensors, where 3-D usually means batch × sequence × D activations)
    ///    only with `given` equal to H×W; without it, an error that says how to reshape.
    ///  - anything else: an error.
    public static func resolve(shape: [Int], given: ImageShape?, threeDimensionalImages: Bool, path: String) throws -> ExampleLayout {
        switch shape.count {
        case 3:
            let image = ImageShape(height: shape[1], width: shape[2])
            if let given, given != image {
                throw UserError("\(path): images are \(image), but ⟨image-shape⟩ says \(given)")
            }
            guard threeDimensionalImages || given != nil else {
                throw UserError("\(path): the tensor is 3-D (\(shape.map(String.init).joined(separator: "×"))); reshape it to N×D "
                                + "(e.g. x.reshape(-1, \(shape[2])) for batch × sequence × D activations), or pass ⟨image-shape⟩ \(image) to read N images")
            }
            guard try image.checkedPixels(naming: "\(path): the image shape \(image)") > 0 else {
                throw UserError("\(path): images have no pixels (shape \(shape))")
            }
            return ExampleLayout(image: image)
        case 2:
            let dims = shape[1]
            guard dims > 0 else { throw UserError("\(path): rows have no values (shape \(shape))") }
            guard let given else { return ExampleLayout(dimensions: dims, imageShape: nil) }
            let pixels = try given.checkedPixels(naming: "⟨image-shape⟩ \(given)")
            guard pixels == dims else {
                throw UserError("\(path): ⟨image-shape⟩ \(given) has \(pixels) pixels, but each row has \(dims)")
            }
            return ExampleLayout(image: given)
        default:
            throw UserError("\(path): expected an N×D matrix (or N×H×W images), got a \(shape.count)-D array of shape \(shape)")
        }
    }
}
