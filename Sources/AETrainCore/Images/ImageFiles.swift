import CImageIO
import Foundation

/// An 8-bit image, row-major, 1 (grey) or 3 (RGB) channels per pixel.
public struct Image8: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]   // (height, width, channels)

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels)
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

public enum JPEGFile {
    /// Decodes a JPEG file to RGB with libjpeg; the error names the file.
    public static func readRGB(path: String) throws -> Image8 {
        var error = [CChar](repeating: 0, count: 512)
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        let status = aet_jpeg_read_rgb(path, &pixels, &width, &height, &error, error.count)
        guard status == 0, let pixels else {
            throw UserError("\(path): not a readable JPEG (\(String(cString: error)))")
        }
        defer { aet_image_free(pixels) }
        let count = Int(width) * Int(height) * 3
        return Image8(width: Int(width), height: Int(height), channels: 3,
                      pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }
}

public enum PNGFile {
    /// Writes `image` as PNG with libpng, durably (`DurableFile`).
    public static func write(_ image: Image8, to url: URL) throws {
        try DurableFile.write(to: url) { tmp in
            var error = [CChar](repeating: 0, count: 512)
            let status = image.pixels.withUnsafeBufferPointer {
                aet_png_write(tmp, $0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels), &error, error.count)
            }
            guard status == 0 else { throw UserError("cannot write \(url.path): \(String(cString: error))") }
        }
    }
}
