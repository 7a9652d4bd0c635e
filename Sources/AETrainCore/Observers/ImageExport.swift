import Foundation

/// The images of a run: dataset.png (the first 64 examples, at the start) and the mosaic of
/// filters.png (the model's first 64 filters, atoms, directions or components, written at the
/// end with the run's other final files, `FinalFiles`), 8 to a row, each tile scaled on its
/// own. Only when the data has an image shape: N×D vectors have none.
public final class ImageExport: RunObserver {
    private var shape: ImageShape?
    public init() {}

    public func started(_ run: RunInfo) throws {
        shape = run.dataset.imageShape
        guard let shape else { return }
        try PNGFile.write(Mosaic.grid(run.preview, shape: shape), to: run.directory.appendingPathComponent("dataset.png"))
    }

    /// The first 64 of `filters` (each d values) as images.
    public static func filterMosaic(_ filters: [[Float]], shape: ImageShape) -> Image8 {
        Mosaic.grid(Array(filters.prefix(64)), shape: shape)
    }
}
