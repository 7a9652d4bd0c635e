/// A problem the user can fix: bad arguments, bad data, an unwritable directory.
///
/// Its message is one line, printed once by rank 0 as `error: <message>`, and the process
/// exits nonzero. Programmer errors use `precondition` instead.
///
/// The core names settings, not flags: a message holds `Setting.marker` (`⟨batch-size⟩`), and
/// the command line renders it as its flag (`rendered(_:)`).
public struct UserError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    /// The message with each setting marker replaced by `name(setting)`.
    public func rendered(_ name: (String) -> String) -> String {
        var out = "", rest = Substring(message)
        while let open = rest.firstIndex(of: "⟨"), let close = rest[open...].firstIndex(of: "⟩") {
            out += rest[..<open]
            out += name(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
    /// The message with bare setting names.
    public var description: String { rendered { $0 } }
}
