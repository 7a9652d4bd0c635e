/// A problem the user can fix: bad arguments, bad data, an unwritable directory.
///
/// Its message is one line, printed once by rank 0 as `error: <message>`, and the process
/// exits nonzero. Programmer errors use `precondition` instead.
public struct UserError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
