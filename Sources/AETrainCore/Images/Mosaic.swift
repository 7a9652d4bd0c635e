/// Images laid out in a grid, the way the sheet shows a few faces and the decoder's filters:
/// each tile scaled on its own from its min (black) to its max (white), tiles separated by
/// thin lines.
public enum Mosaic {
    /// - tiles: each (shape.pixels) values, row-major.
    /// - columns: tiles per row; rows follow from the count.
    /// - zoom: each pixel becomes zoom × zoom screen pixels.
    public static func render(tiles: [[Float]], shape: ImageShape, columns: Int, zoom: Int = 2,
                              separator: Int = 1, separatorLevel: UInt8 = 255) -> Image8 {
        precondition(columns > 0 && zoom > 0 && tiles.allSatisfy { $0.count == shape.pixels })
        let rows = max(1, (tiles.count + columns - 1) / columns)
        let tileW = shape.width * zoom, tileH = shape.height * zoom
        let width = columns * tileW + (columns + 1) * separator
        let height = rows * tileH + (rows + 1) * separator
        var pixels = [UInt8](repeating: separatorLevel, count: width * height)
        for (t, tile) in tiles.enumerated() {
            let lo = tile.min() ?? 0, hi = tile.max() ?? 1
            let scale: Float = hi > lo ? 255 / (hi - lo) : 0
            let x0 = separator + (t % columns) * (tileW + separator)
            let y0 = separator + (t / columns) * (tileH + separator)
            for y in 0..<shape.height {
                for x in 0..<shape.width {
                    let level = UInt8(max(0, min(255, ((tile[y * shape.width + x] - lo) * scale).rounded())))
                    for dy in 0..<zoom {
                        let rowStart = (y0 + y * zoom + dy) * width + x0 + x * zoom
                        for dx in 0..<zoom { pixels[rowStart + dx] = level }
                    }
                }
            }
        }
        return Image8(width: width, height: height, channels: 1, pixels: pixels)
    }
}

extension Mosaic {
    /// A zoom that makes tiles about 72 screen pixels on their longer side.
    public static func zoom(for shape: ImageShape) -> Int {
        max(1, Int((72.0 / Double(max(shape.height, shape.width))).rounded()))
    }

    /// Up to 64 tiles in rows of 8.
    public static func grid(_ tiles: [[Float]], shape: ImageShape) -> Image8 {
        render(tiles: Array(tiles.prefix(64)), shape: shape, columns: min(8, max(1, tiles.count)), zoom: zoom(for: shape))
    }
}
