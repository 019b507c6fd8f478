/// An operation that failed: printed as `error: ...` and exits with status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
