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
        let descriptor: UnsafePointer<svm_plugin_descriptor>
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
        let entry = unsafeBitCast(symbol, to: EntryFunction.self)
        var request = svm_plugin_request.sized()
        request.host_abi_major = ABIVersion.current.major
        request.host_abi_minor = ABIVersion.current.minor
        guard let descriptor = entry(&request) else { throw fail(.refusedByPlugin(host: .current)) }

        let raw = descriptor.pointee
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
        let name = String(cString: namePointer)
        if let problem = PluginIdentity.problem(withName: name) { throw fail(.malformedDescriptor(problem)) }
        guard let versionPointer = raw.version, versionPointer.pointee != 0 else {
            throw fail(.malformedDescriptor("version of '\(name)' is empty"))
        }
        if let missing = missingRequiredOp(raw, kind: kind) { throw fail(.missingRequiredOp(missing)) }
        let identity = PluginIdentity(
            name: name, version: String(cString: versionPointer),
            description: raw.description.map { String(cString: $0) } ?? "", kind: kind)
        let negotiated = ABIVersion(major: pluginABI.major, minor: min(pluginABI.minor, ABIVersion.current.minor))
        return Validated(descriptor: descriptor, identity: identity, negotiatedABI: negotiated)
    }

    /// The optional pagemap ops a plugin must provide once it provides `devmem_alloc`.
    static let devmemCompanions = ["pagemap_ops.devmem_free", "pagemap_ops.copy_to_devmem", "pagemap_ops.copy_to_ram"]

    /// The name of the first required op that is NULL (or outside its table's size).
    static func missingRequiredOp(_ raw: svm_plugin_descriptor, kind: PluginKind) -> String? {
        if raw.`init` == nil { return "init" }
        switch kind {
        case .device:
            guard let ops = raw.device_ops?.pointee else { return "device_ops" }
            let deviceOps: [(String, Bool)] = [
                ("device_count", ops.has(\.device_count) && ops.device_count != nil),
                ("device_info", ops.has(\.device_info) && ops.device_info != nil),
                ("open_device", ops.has(\.open_device) && ops.open_device != nil),
                ("close_device", ops.has(\.close_device) && ops.close_device != nil),
            ]
            if let (name, _) = deviceOps.first(where: { !$0.1 }) { return "device_ops.\(name)" }
            guard let pagemap = raw.pagemap_ops?.pointee else { return "pagemap_ops" }
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
            guard let ops = raw.interconnect_ops?.pointee else { return "interconnect_ops" }
            if !(ops.has(\.link_info) && ops.link_info != nil) { return "interconnect_ops.link_info" }
        }
        return nil
    }

    /// Calls the plugin's init with its host services.
    static func initialize(
        _ validated: Validated, path: String, services: PluginServices
    ) throws(PluginLoadFailure) -> UnsafeMutableRawPointer? {
        var context: UnsafeMutableRawPointer?
        let status = validated.descriptor.pointee.`init`!(validated.descriptor, services.table, &context)
        if let error = PluginErrno(status: status) {
            throw PluginLoadFailure(path: path, reason: .initFailed(error, detail: services.lastError.withLock { $0 }))
        }
        return context
    }
}
