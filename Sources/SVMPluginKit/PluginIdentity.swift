import CSVMPluginABI

/// What a plugin is: a device (which also provides its pagemap) or an interconnect.
public enum PluginKind: String, Sendable, Codable, CaseIterable {
    case device
    case interconnect

    public init?(raw: UInt32) {
        switch raw {
        case UInt32(SVM_PLUGIN_KIND_DEVICE.rawValue): self = .device
        case UInt32(SVM_PLUGIN_KIND_INTERCONNECT.rawValue): self = .interconnect
        default: return nil
        }
    }

    public var raw: UInt32 {
        switch self {
        case .device: UInt32(SVM_PLUGIN_KIND_DEVICE.rawValue)
        case .interconnect: UInt32(SVM_PLUGIN_KIND_INTERCONNECT.rawValue)
        }
    }
}

/// The name, version and kind a plugin declares in its descriptor.
public struct PluginIdentity: Sendable, Hashable {
    public var name: String
    public var version: String
    public var description: String
    public var kind: PluginKind

    public init(name: String, version: String, description: String = "", kind: PluginKind) {
        self.name = name
        self.version = version
        self.description = description
        self.kind = kind
    }

    /// Why `name` cannot name a plugin, or `nil` when it can: 1 to 63 characters of
    /// `[A-Za-z0-9_.-]`, so that it fits `SVM_NAME_MAX` and a `--plugin-option NAME.key=v`.
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "the plugin name is empty" }
        if name.utf8.count >= Int(SVM_NAME_MAX) {
            return "the plugin name is longer than \(SVM_NAME_MAX - 1) bytes"
        }
        let allowed = name.unicodeScalars.allSatisfy {
            ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0)
                || $0 == "_" || $0 == "-" || $0 == "."
        }
        return allowed ? nil : "the plugin name '\(PluginText.sanitized(name, limit: Int(SVM_NAME_MAX)))' has characters outside [A-Za-z0-9_.-]"
    }
}
