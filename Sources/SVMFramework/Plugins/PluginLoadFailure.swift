import SVMPluginKit

/// Why a plugin file was not loaded. Each has a one-line message naming the file.
public struct PluginLoadFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// The search path names a file or folder that does not exist or cannot be read.
        case notFound(String)
        /// dlopen refused the file: not an ELF shared object, wrong architecture, missing
        /// dependency. Carries the loader's message.
        case notSharedObject(String)
        /// The file has no `svm_plugin_entry` symbol.
        case noEntrySymbol
        /// The `svm_plugin_entry` symbol is not a function (data, for one).
        case entryNotAFunction
        /// The entry returned NULL: the plugin will not serve this host's ABI.
        case refusedByPlugin(host: ABIVersion)
        /// The plugin was built against another ABI major.
        case abiMajorMismatch(plugin: ABIVersion, host: ABIVersion)
        /// The descriptor breaks the ABI's rules (size, kind, name, version).
        case malformedDescriptor(String)
        /// A required op is NULL; carries its name, e.g. `device_ops.device_info`, or
        /// `pagemap_ops.devmem_free` for an optional op required with another one present.
        case missingRequiredOp(String)
        /// Another loaded plugin already has this name.
        case duplicateName(String, loadedFrom: String)
        /// The plugin's init returned an error; carries the plugin's own last error line.
        case initFailed(PluginErrno, detail: String?)
    }

    /// The file (or search-path entry) concerned.
    public let path: String
    public let reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(explanation)" }

    /// The reason alone, one line.
    public var explanation: String {
        switch reason {
        case .notFound(let detail):
            return "not found: \(detail)"
        case .notSharedObject(let message):
            return "not a loadable shared object (\(message))"
        case .noEntrySymbol:
            return "no entry symbol '\(PluginLoader.entrySymbol)': not an SVM plugin"
        case .entryNotAFunction:
            return "the entry symbol '\(PluginLoader.entrySymbol)' is not a function"
        case .refusedByPlugin(let host):
            return "the plugin refused this host's ABI \(host)"
        case .abiMajorMismatch(let plugin, let host):
            return "built for plugin ABI \(plugin); this host speaks \(host) and needs major \(host.major)"
        case .malformedDescriptor(let detail):
            return "malformed descriptor: \(detail)"
        case .missingRequiredOp(let op):
            let condition = PluginLoader.devmemCompanions.contains(op) ? " (required with pagemap_ops.devmem_alloc)" : ""
            return "required op \(op) is missing\(condition)"
        case .duplicateName(let name, let other):
            return "a plugin named '\(name)' is already loaded from \(other); this one is skipped"
        case .initFailed(let error, let detail):
            return "init failed with \(error)" + (detail.map { ": \($0)" } ?? "")
        }
    }
}
