/// Height × width of one image; its pixels are one row of the data matrix (row-major).
public struct ImageShape: Equatable, Codable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(height: Int, width: Int) { self.height = height; self.width = width }

    /// Parses `HxW`, e.g. `37x28`.
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0 else { return nil }
        self.init(height: h, width: w)
    }

    public var pixels: Int { height * width }
    public var description: String { "\(height)x\(width)" }
}
