/// A plugin returned something the ABI rules out (a count above its maximum, a value that
/// contradicts another): refused by the host with what was wrong, never used.
public struct PluginContractViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
