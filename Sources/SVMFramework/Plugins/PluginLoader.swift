import CSVMPluginABI
import SVMPluginKit

/// Loads one plugin file: dlopen, entry symbol, ABI negotiation, descriptor and ops
/// validation, then init. Every refusal is a ``PluginLoadFailure`` naming the file.
struct PluginLoader {
    static let entrySymbol = SVM_PLUGIN_ENTRY_SYMBOL

    /// The smallest descriptor a 1.0 plugin can have: up to and including `plugin_data`.
    static let minimumDescriptorSize =
        MemoryLayout<svm_plugin_descriptor>.offset(of: \.plugin_data)! + MemoryLayout<UnsafeMutableRawPointer?>.size

    typealias EntryFunction = @convention(c) (UnsafePointer<svm_plugin_request>?) -> UnsafePointer<svm_plugin_descriptor>?

    /// A descriptor that passed validation, before init.
    struct Validated {
        /// The plugin's own descriptor, which its init receives.
        let descriptor: UnsafePointer<svm_plugin_descriptor>
        /// The host's copies of the descriptor and the ops tables it names, each read only up
        /// to the `struct_size` the plugin gave: the host reads these, never the plugin's.
        let tables: PluginTables
        let identity: PluginIdentity
        let negotiatedABI: ABIVersion
    }

    /// Opens `path` and validates what its entry returns.
    static func open(_ path: String) throws(PluginLoadFailure) -> Validated {
        func fail(_ reason: PluginLoadFailure.Reason) -> PluginLoadFailure {
            PluginLoadFailure(path: path, reason: reason)
        }
        let library: DynamicLibrary
        do {
            library = try DynamicLibrary(path: path)
        } catch {
            throw fail(.notSharedObject(error.message))
        }
        guard let symbol = library.symbol(entrySymbol) else { throw fail(.noEntrySymbol) }
        // Calling a data symbol would jump into data.
        guard DynamicLibrary.isFunction(symbol) else { throw fail(.entryNotAFunction) }
        let entry = unsafeBitCast(symbol, to: EntryFunction.self)
        var request = svm_plugin_request.sized()
        request.host_abi_major = ABIVersion.current.major
        request.host_abi_minor = ABIVersion.current.minor
        guard let descriptor = entry(&request) else { throw fail(.refusedByPlugin(host: .current)) }

        let raw = svm_plugin_descriptor.copy(from: descriptor)
        guard raw.has(\.abi_minor) else { throw fail(.malformedDescriptor("struct_size \(raw.struct_size) is too small")) }
        let pluginABI = ABIVersion(major: raw.abi_major, minor: raw.abi_minor)
        guard pluginABI.major == ABIVersion.current.major else {
            throw fail(.abiMajorMismatch(plugin: pluginABI, host: .current))
        }
        guard Int(raw.struct_size) >= minimumDescriptorSize else {
            throw fail(.malformedDescriptor("struct_size \(raw.struct_size) is below the \(minimumDescriptorSize) bytes of ABI 1.0"))
        }
        guard let kind = PluginKind(raw: raw.kind) else { throw fail(.malformedDescriptor("unknown kind \(raw.kind)")) }
        guard let namePointer = raw.name else { throw fail(.malformedDescriptor("name is NULL")) }
        // Read no further than a name may be long; checked before it is printed anywhere.
        guard PluginText.byteCount(namePointer, upTo: Int(SVM_NAME_MAX)) < Int(SVM_NAME_MAX) else {
            throw fail(.malformedDescriptor("the plugin name is longer than \(SVM_NAME_MAX - 1) bytes"))
        }
        let name = String(cString: namePointer)
        if let problem = PluginIdentity.problem(withName: name) { throw fail(.malformedDescriptor(problem)) }
        guard let versionPointer = raw.version, versionPointer.pointee != 0 else {
            throw fail(.malformedDescriptor("version of '\(name)' is empty"))
        }
        let tables = PluginTables(raw)
        if let missing = missingRequiredOp(tables, kind: kind) { throw fail(.missingRequiredOp(missing)) }
        let identity = PluginIdentity(
            name: name, version: PluginText.sanitized(versionPointer, limit: PluginText.versionLimit),
            description: raw.description.map { PluginText.sanitized($0, limit: PluginText.descriptionLimit) } ?? "",
            kind: kind)
        let negotiated = ABIVersion(major: pluginABI.major, minor: min(pluginABI.minor, ABIVersion.current.minor))
        return Validated(descriptor: descriptor, tables: tables, identity: identity, negotiatedABI: negotiated)
    }

    /// The optional pagemap ops a plugin must provide once it provides `devmem_alloc`.
    static let devmemCompanions = ["pagemap_ops.devmem_free", "pagemap_ops.copy_to_devmem", "pagemap_ops.copy_to_ram"]

    /// The name of the first required op that is NULL (or outside its table's size).
    static func missingRequiredOp(_ tables: PluginTables, kind: PluginKind) -> String? {
        if tables.descriptor.`init` == nil { return "init" }
        switch kind {
        case .device:
            guard let ops = tables.deviceOps else { return "device_ops" }
            let deviceOps: [(String, Bool)] = [
                ("device_count", ops.has(\.device_count) && ops.device_count != nil),
                ("device_info", ops.has(\.device_info) && ops.device_info != nil),
                ("open_device", ops.has(\.open_device) && ops.open_device != nil),
                ("close_device", ops.has(\.close_device) && ops.close_device != nil),
            ]
            if let (name, _) = deviceOps.first(where: { !$0.1 }) { return "device_ops.\(name)" }
            guard let pagemap = tables.pagemapOps else { return "pagemap_ops" }
            if !(pagemap.has(\.pagemap_info) && pagemap.pagemap_info != nil) { return "pagemap_ops.pagemap_info" }
            // [1.1] Device memory is optional, but devmem_alloc needs the ops that free it
            // and move data in and out: the host could not migrate back otherwise.
            if pagemap.has(\.devmem_alloc) && pagemap.devmem_alloc != nil {
                let companions: [(String, Bool)] = [
                    ("pagemap_ops.devmem_free", pagemap.has(\.devmem_free) && pagemap.devmem_free != nil),
                    ("pagemap_ops.copy_to_devmem", pagemap.has(\.copy_to_devmem) && pagemap.copy_to_devmem != nil),
                    ("pagemap_ops.copy_to_ram", pagemap.has(\.copy_to_ram) && pagemap.copy_to_ram != nil),
                ]
                assert(companions.map(\.0) == devmemCompanions)
                if let (name, _) = companions.first(where: { !$0.1 }) { return name }
            }
        case .interconnect:
            guard let ops = tables.interconnectOps else { return "interconnect_ops" }
            if !(ops.has(\.link_info) && ops.link_info != nil) { return "interconnect_ops.link_info" }
        }
        return nil
    }

    /// Calls the plugin's init with its host services.
    static func initialize(
        _ validated: Validated, path: String, services: PluginServices
    ) throws(PluginLoadFailure) -> UnsafeMutableRawPointer? {
        var context: UnsafeMutableRawPointer?
        let status = validated.tables.descriptor.`init`!(validated.descriptor, services.table, &context)
        if let error = PluginErrno(status: status) {
            throw PluginLoadFailure(path: path, reason: .initFailed(error, detail: services.lastError.withLock { $0 }))
        }
        return context
    }
}
