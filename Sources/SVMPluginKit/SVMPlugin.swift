/// A plugin written in Swift: its identity and its life cycle. Conform through
/// ``DevicePlugin`` or ``InterconnectPlugin`` and export it with ``PluginExporter``.
public protocol SVMPlugin: AnyObject, Sendable {
    /// Name, version, description and kind, as the descriptor declares them.
    static var identity: PluginIdentity { get }

    /// [required] The descriptor's `init`: set the plugin up. Throwing makes the host skip
    /// the plugin with the error in its message. Host thread.
    init(host: HostServices) throws

    /// [optional] The descriptor's `fini`: called once, after every device is closed.
    func shutdown()
}

extension SVMPlugin {
    public func shutdown() {}
}

/// A device plugin: it exposes devices, each with its pagemap.
public protocol DevicePlugin: SVMPlugin, DeviceDriver {
    /// [optional] The ABI 1.1 op groups its devices implement; the exporter exports only
    /// these (default: none, so a 1.0-style device keeps its tables free of them).
    static var implementedOps: DeviceOpGroups { get }
}

extension DevicePlugin {
    public static var implementedOps: DeviceOpGroups { [] }
}

/// An interconnect plugin: a fabric between devices.
public protocol InterconnectPlugin: SVMPlugin, Interconnect {}
