import CSVMPluginABI
import SVMPluginKit
import Synchronization

/// A plugin the host loaded, validated and initialised.
public final class LoadedPlugin: @unchecked Sendable {
    public let name: String
    public let version: String
    public let description: String
    public let kind: PluginKind
    /// The ABI the plugin declares.
    public let pluginABI: ABIVersion
    /// The ABI both sides use: the host's major, the lower of the two minors.
    public let negotiatedABI: ABIVersion
    /// The file it was loaded from, and which part of the search path named it.
    public let path: String
    public let origin: PluginSearchPath.Origin
    /// The device ops, for a device plugin.
    public let device: (any DeviceDriver)?
    /// The interconnect ops, for an interconnect plugin.
    public let interconnect: (any Interconnect)?

    // Immutable after init; `finished` makes fini run once.
    private let descriptor: UnsafePointer<svm_plugin_descriptor>
    private let context: UnsafeMutableRawPointer?
    let services: PluginServices
    private let finished = Atomic<Bool>(false)

    init(
        descriptor: UnsafePointer<svm_plugin_descriptor>, identity: PluginIdentity,
        negotiatedABI: ABIVersion, path: String, origin: PluginSearchPath.Origin,
        context: UnsafeMutableRawPointer?, services: PluginServices
    ) {
        self.descriptor = descriptor
        name = identity.name
        version = identity.version
        description = identity.description
        kind = identity.kind
        pluginABI = ABIVersion(major: descriptor.pointee.abi_major, minor: descriptor.pointee.abi_minor)
        self.negotiatedABI = negotiatedABI
        self.path = path
        self.origin = origin
        self.context = context
        self.services = services
        let raw = descriptor.pointee
        switch identity.kind {
        case .device:
            device = LoadedDeviceDriver(ops: raw.device_ops!, pagemapOps: raw.pagemap_ops!, context: context)
            interconnect = nil
        case .interconnect:
            device = nil
            interconnect = LoadedInterconnect(ops: raw.interconnect_ops!, context: context)
        }
    }

    /// Calls the plugin's `fini` once; the caller has closed every device first.
    func shutdown() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let fini = descriptor.pointee.fini { fini(context) }
    }
}
