import Foundation

/// How LFW JPEGs become pixels; the defaults are scikit-learn's `fetch_lfw_people`.
public struct LFWSettings: Equatable, Codable, Sendable {
    /// Scale of the 125×94 crop (0.5 → 62×47; 0.3 → 37×28 = 1036 pixels, the sheet's size).
    public var resize: Double = 0.5
    /// Keep only people with at least this many images.
    public var minFacesPerPerson: Int = 0
    public init(resize: Double = 0.5, minFacesPerPerson: Int = 0) {
        self.resize = resize; self.minFacesPerPerson = minFacesPerPerson
    }

    /// `int(resize·125)` × `int(resize·94)`, as scikit-learn computes it.
    public var imageShape: ImageShape {
        ImageShape(height: Int(resize * Double(LFWTree.cropRows.count)), width: Int(resize * Double(LFWTree.cropColumns.count)))
    }

    public func validate() throws {
        // The bound first: `imageShape` converts resize·125 to Int, which traps beyond Int's range.
        guard resize.isFinite, resize <= 1 else { throw UserError("⟨lfw-resize⟩ must be at most 1 (the crop is 125×94 pixels), got \(resize)") }
        guard resize > 0, imageShape.height >= 1, imageShape.width >= 1 else {
            throw UserError("⟨lfw-resize⟩ must give images of at least 1×1 pixels (resize·125 and resize·94 ≥ 1), got \(resize)")
        }
        guard minFacesPerPerson >= 0 else { throw UserError("⟨min-faces-per-person⟩ must be ≥ 0, got \(minFacesPerPerson)") }
    }
}

/// One image of an LFW tree (`DIR/Person_Name/Person_Name_0001.jpg`).
public struct LFWEntry: Equatable, Sendable {
    /// Path relative to the tree's root.
    public var file: String
    /// The folder name with underscores as spaces, as scikit-learn reports it.
    public var person: String
}

/// LFW as its original JPEG tree, read the way scikit-learn's `fetch_lfw_people` reads it:
/// people and their files in sorted order, the crop `slice_=(slice(70, 195), slice(78, 172))`,
/// Pillow's default resize, grey = mean of R, G, B after scaling to [0, 1].
/// (scikit-learn then shuffles the rows with a fixed seed; aetrain keeps the sorted order and
/// writes it down in the sidecar CSV.)
public enum LFWTree {
    public static let cropRows = 70..<195
    public static let cropColumns = 78..<172

    /// Every image of every person with at least `minFaces` images, sorted as Python sorts
    /// names (by code point).
    public static func list(_ root: String, minFaces: Int) throws -> [LFWEntry] {
        let fm = FileManager.default
        func sortedNames(_ dir: String) throws -> [String] {
            do {
                return try fm.contentsOfDirectory(atPath: dir).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            } catch {
                throw UserError("\(dir): cannot list the directory: \(error.localizedDescription)")
            }
        }
        var entries: [LFWEntry] = []
        for person in try sortedNames(root) {
            var isDir: ObjCBool = false
            let folder = (root as NSString).appendingPathComponent(person)
            guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { continue }
            let files = try sortedNames(folder)
            guard files.count >= max(1, minFaces) else { continue }
            let name = person.replacingOccurrences(of: "_", with: " ")
            entries += files.map { LFWEntry(file: person + "/" + $0, person: name) }
        }
        guard !entries.isEmpty else {
            throw UserError(minFaces > 1
                ? "\(root): no person in this LFW tree has \(minFaces) or more images (⟨min-faces-per-person⟩)"
                : "\(root): empty LFW tree: expected folders Person_Name/ holding Person_Name_0001.jpg, …")
        }
        return entries
    }

    /// Decodes, crops, resizes and greys one image into `out` (settings.imageShape.pixels).
    public static func load(root: String, entry: LFWEntry, settings: LFWSettings, into out: UnsafeMutablePointer<Float>) throws {
        let path = (root as NSString).appendingPathComponent(entry.file)
        let rgb = try JPEGFile.readRGB(path: path)
        guard rgb.height >= cropRows.upperBound, rgb.width >= cropColumns.upperBound else {
            throw UserError("\(path): \(rgb.width)×\(rgb.height) pixels, too small for LFW's crop (rows 70–195, columns 78–172 of a 250×250 image)")
        }
        var crop = [UInt8](repeating: 0, count: cropRows.count * cropColumns.count * 3)
        for (y, row) in cropRows.enumerated() {
            let src = (row * rgb.width + cropColumns.lowerBound) * 3
            for i in 0..<(cropColumns.count * 3) { crop[y * cropColumns.count * 3 + i] = rgb.pixels[src + i] }
        }
        let shape = settings.imageShape
        let small = PillowResize.resize(Image8(width: cropColumns.count, height: cropRows.count, channels: 3, pixels: crop),
                                        width: shape.width, height: shape.height)
        for p in 0..<shape.pixels {
            // numpy: float32 array /= 255, then mean over the channel axis.
            let r = Float(small.pixels[3 * p]) / 255, g = Float(small.pixels[3 * p + 1]) / 255, b = Float(small.pixels[3 * p + 2]) / 255
            out[p] = (r + g + b) / 3
        }
    }
}
