import SVMPluginKit

/// What a loaded plugin is and offers, in a form to print or encode as JSON.
public struct PluginReport: Sendable, Hashable, Codable {
    /// One device of a device plugin, with its pagemap when the device could be opened.
    public struct Device: Sendable, Hashable, Codable {
        public var index: Int
        public var info: DeviceInfo
        public var pagemap: PagemapInfo?
        /// Why the device or its pagemap could not be queried.
        public var problem: String?
    }

    public var name: String
    public var kind: PluginKind
    public var version: String
    public var description: String
    /// The negotiated ABI, e.g. `1.0`.
    public var abi: String
    public var pluginABI: String
    public var path: String
    public var origin: PluginSearchPath.Origin
    public var devices: [Device]?
    public var link: LinkInfo?
    /// An interconnect's topology (ABI 1.6), when detailed.
    public var topology: [TopologyLink]?
    /// Why the plugin's ops could not be queried.
    public var problem: String?

    /// The identity of `plugin`; with `detailed`, also asks it for its devices (opening
    /// each briefly for its pagemap) or its links.
    public init(_ plugin: LoadedPlugin, detailed: Bool) {
        name = plugin.name
        kind = plugin.kind
        version = plugin.version
        description = plugin.description
        abi = plugin.negotiatedABI.description
        pluginABI = plugin.pluginABI.description
        path = plugin.path
        origin = plugin.origin
        guard detailed else { return }
        do {
            if let driver = plugin.device {
                devices = try (0..<driver.deviceCount()).map { index in
                    try Self.device(index, of: driver)
                }
            }
            if let interconnect = plugin.interconnect {
                link = try interconnect.linkInfo()
                topology = try interconnect.links()
            }
        } catch {
            problem = "\(error)"
        }
    }

    private static func device(_ index: Int, of driver: any DeviceDriver) throws -> Device {
        let info = try driver.deviceInfo(at: index)
        var device = Device(index: index, info: info)
        do {
            let open = try driver.openDevice(at: index, hostDevice: UInt64(index))
            defer { open.close() }
            device.pagemap = try open.pagemapInfo()
        } catch {
            device.problem = "\(error)"
        }
        return device
    }
}
