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
    /// The largest width and height decoded (LFW's images are 250×250). The header is read
    /// first: a larger image is refused before its pixels are allocated.
    public static let maxSide = 4096

    /// Decodes a JPEG file to RGB with libjpeg (CMYK and YCCK converted as Pillow does);
    /// the error names the file.
    public static func readRGB(path: String) throws -> Image8 {
        var error = [CChar](repeating: 0, count: 512)
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        let status = aet_jpeg_read_rgb(path, Int32(maxSide), &pixels, &width, &height, &error, error.count)
        if status == -2 {
            throw UserError("\(path): the JPEG header says \(width)×\(height) pixels, beyond the \(maxSide)×\(maxSide) aetrain decodes (LFW images are 250×250)")
        }
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
        try DurableFile.write(to: url) { tmp in try write(image, path: tmp) }
    }

    /// Writes `image` as PNG at `path` as it is (the callers make it durable).
    public static func write(_ image: Image8, path: String) throws {
        var error = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer {
            aet_png_write(path, $0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels), &error, error.count)
        }
        guard status == 0 else { throw UserError("cannot write \(path): \(String(cString: error))") }
    }
}
