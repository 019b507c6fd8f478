import CSVMPluginABI
import SVMPluginKit

private let exporter = PluginExporter(device: XeDevicePlugin.self)

/// The plugin's entry symbol: the host finds it with dlsym.
@_cdecl("svm_plugin_entry")
public func svmPluginEntry(_ request: UnsafePointer<svm_plugin_request>?)
    -> UnsafePointer<svm_plugin_descriptor>?
{
    exporter.entry(request)
}

/// Intel Xe GPUs driven through the kernel's xe driver, which does SVM itself.
///
/// At init the plugin discovers Intel display-class PCI functions bound to the `xe` driver.
/// Without such a GPU it loads with zero devices and says so, so the rest of the framework
/// works on any machine.
///
/// Options (`--plugin-option XeDevice.KEY=VALUE`):
/// - `sysfs-root`: read PCI functions from this copy of `/sys` instead of asking
///   libpciaccess; used to replay recorded machines in tests.
public final class XeDevicePlugin: DevicePlugin {
    public static let identity = PluginIdentity(
        name: "XeDevice", version: "0.1.0",
        description: "Intel Xe GPUs through the kernel xe driver (discovery over PCI and sysfs)",
        kind: .device)

    let gpus: [XeGPU]

    public required init(host: HostServices) throws {
        let discovery: XeDiscovery
        if let root = host.config("sysfs-root") {
            discovery = XeDiscovery(sysfsRoot: root, source: .sysfs)
        } else {
            discovery = XeDiscovery(sysfsRoot: "/sys", source: .libpciaccess)
        }
        let result = discovery.run()
        gpus = result.gpus
        for note in result.notes { host.log(.debug, note) }
        if gpus.isEmpty {
            host.log(
                .info,
                "no Intel Xe GPU found (\(result.intelDisplayFunctions) Intel display function(s) seen, none bound to xe)"
            )
        }
    }

    public func deviceCount() throws -> Int { gpus.count }

    public func deviceInfo(at index: Int) throws -> DeviceInfo {
        guard gpus.indices.contains(index) else { throw PluginErrno.noDevice }
        let gpu = gpus[index]
        // Device memory is read from DRM_XE_DEVICE_QUERY_MEM_REGIONS once the device is
        // opened; discovery alone does not know it.
        return DeviceInfo(
            name: "xe-\(gpu.pciAddress)", flags: .hardware, vendorID: gpu.vendorID,
            deviceID: gpu.deviceID, memoryBytes: 0, pageSizes: [4 << 10, 64 << 10, 2 << 20])
    }

    public func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice {
        guard gpus.indices.contains(index) else { throw PluginErrno.noDevice }
        return try XeOpenDevice(gpu: gpus[index])
    }
}
