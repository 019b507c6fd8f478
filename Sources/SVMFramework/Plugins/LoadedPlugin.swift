import CSVMPluginABI
import SVMPluginKit

/// A plugin the host loaded, validated and initialised. Its `fini` runs when the last
/// reference to it, its ops or one of its open devices is released.
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

    // Immutable after init.
    private let lifetime: PluginLifetime
    let services: PluginServices

    init(
        tables: PluginTables, identity: PluginIdentity,
        negotiatedABI: ABIVersion, path: String, origin: PluginSearchPath.Origin,
        context: UnsafeMutableRawPointer?, services: PluginServices
    ) {
        let lifetime = PluginLifetime(fini: tables.descriptor.fini, context: context)
        self.lifetime = lifetime
        name = identity.name
        version = identity.version
        description = identity.description
        kind = identity.kind
        pluginABI = ABIVersion(major: tables.descriptor.abi_major, minor: tables.descriptor.abi_minor)
        self.negotiatedABI = negotiatedABI
        self.path = path
        self.origin = origin
        self.services = services
        // The loader checked that the tables of the plugin's kind are there.
        switch identity.kind {
        case .device:
            device = LoadedDeviceDriver(ops: tables.deviceOps!, pagemapOps: tables.pagemapOps!, lifetime: lifetime)
            interconnect = nil
        case .interconnect:
            device = nil
            interconnect = LoadedInterconnect(ops: tables.interconnectOps!, lifetime: lifetime)
        }
    }

}
