/// Pillow's `Image.resize` with its default filter (bicubic, antialiased when shrinking), for
/// 8-bit images, reproduced operation for operation so that aetrain's LFW pixels are those of
/// scikit-learn's `fetch_lfw_people` (which crops and resizes with Pillow):
///
/// - coefficients per output pixel over the input window scaled by max(1, in/out)
///   (`precompute_coeffs` in Pillow's Resample.c), normalized to sum 1 and rounded to
///   22-bit fixed point;
/// - a horizontal pass then a vertical pass, each rounding and clipping to 8 bits.
public enum PillowResize {
    static let precisionBits = 32 - 8 - 2

    static func bicubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// (first input index, taps, fixed-point weights) for each output index.
    static func coefficients(inSize: Int, outSize: Int) -> [(start: Int, weights: [Int32])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 2 * filterScale
        return (0..<outSize).map { xx in
            let center = (Double(xx) + 0.5) * scale
            let xmin = max(0, Int(center - support + 0.5))
            let xmax = min(inSize, Int(center + support + 0.5)) - xmin
            var w = (0..<max(0, xmax)).map { bicubic((Double($0 + xmin) - center + 0.5) / filterScale) }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            let fixed = w.map { v -> Int32 in
                let s = v * Double(1 << precisionBits)
                return Int32(s < 0 ? s - 0.5 : s + 0.5)  // truncation toward zero, as C's (int)
            }
            return (xmin, fixed)
        }
    }

    @inline(__always) static func clip8(_ v: Int32) -> UInt8 {
        UInt8(max(0, min(255, v >> Int32(precisionBits))))
    }

    /// Resizes `image` (any channel count) to `width` × `height`.
    public static func resize(_ image: Image8, width: Int, height: Int) -> Image8 {
        let c = image.channels
        var current = image
        if width != image.width {
            let coeffs = coefficients(inSize: image.width, outSize: width)
            var out = [UInt8](repeating: 0, count: width * image.height * c)
            for y in 0..<image.height {
                for (xx, k) in coeffs.enumerated() {
                    for ch in 0..<c {
                        var ss: Int32 = 1 << Int32(precisionBits - 1)
                        for (i, w) in k.weights.enumerated() {
                            ss &+= Int32(image.pixels[(y * image.width + k.start + i) * c + ch]) &* w
                        }
                        out[(y * width + xx) * c + ch] = clip8(ss)
                    }
                }
            }
            current = Image8(width: width, height: image.height, channels: c, pixels: out)
        }
        if height != current.height {
            let coeffs = coefficients(inSize: current.height, outSize: height)
            var out = [UInt8](repeating: 0, count: width * height * c)
            for (yy, k) in coeffs.enumerated() {
                for x in 0..<width {
                    for ch in 0..<c {
                        var ss: Int32 = 1 << Int32(precisionBits - 1)
                        for (i, w) in k.weights.enumerated() {
                            ss &+= Int32(current.pixels[((k.start + i) * width + x) * c + ch]) &* w
                        }
                        out[(yy * width + x) * c + ch] = clip8(ss)
                    }
                }
            }
            current = Image8(width: width, height: height, channels: c, pixels: out)
        }
        return current
    }
}
