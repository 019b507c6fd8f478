import CSVMPluginABI

/// A plugin ABI version: the major must match, the minor says which appended members exist.
public struct ABIVersion: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// The version this build of the kit and host speaks (`SVM_PLUGIN_ABI_MAJOR.MINOR`).
    public static let current = ABIVersion(
        major: UInt16(SVM_PLUGIN_ABI_MAJOR), minor: UInt16(SVM_PLUGIN_ABI_MINOR))

    public static func < (a: ABIVersion, b: ABIVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    public var description: String { "\(major).\(minor)" }
}
