import CSVMPluginABI
import SVMPluginKit

private let exporter = PluginExporter(device: SimDevicePlugin.self)

/// The plugin's entry symbol: the host finds it with dlsym.
@_cdecl("svm_plugin_entry")
public func svmPluginEntry(_ request: UnsafePointer<svm_plugin_request>?)
    -> UnsafePointer<svm_plugin_descriptor>?
{
    exporter.entry(request)
}

/// A simulated GPU: device memory is host memory, time is the host's simulated clock.
///
/// Each open device has its own memory (lazily backed host memory with a buddy allocator),
/// a GPU page table, and runs kernels that fault on SVM addresses through the host.
///
/// Options (`--plugin-option SimDevice.KEY=VALUE`):
/// - `devices`: how many devices (default 1);
/// - `memory`: device memory per device (default 1 GiB, small enough that several simulated
///   devices fit in a developer machine's RAM);
/// - `min-page`: the smallest device-memory chunk, `4K` or `64K` (default 4K, as
///   `drm_buddy` on integrated parts; discrete Xe parts use 64K).
public final class SimDevicePlugin: DevicePlugin {
    public static let identity = PluginIdentity(
        name: "SimDevice", version: "0.1.0",
        description: "Simulated GPU: host-memory VRAM, GPU page table, simulated time",
        kind: .device)

    /// Device memory, a GPU page table and kernels: everything ABI 1.1 offers.
    public static let implementedOps: DeviceOpGroups = [.deviceMemory, .pageTable]

    let configuration: SimDeviceConfiguration
    let host: HostServices
    /// The open devices' memories, which their peers reach.
    let peers = SimDevicePeers()

    public required init(host: HostServices) throws {
        self.host = host
        configuration = try SimDeviceConfiguration(options: host.config)
        host.log(
            .debug,
            "\(configuration.deviceCount) device(s), \(ByteCount.format(configuration.memoryBytes)) each"
        )
    }

    public func deviceCount() throws -> Int { configuration.deviceCount }

    public func deviceInfo(at index: Int) throws -> DeviceInfo {
        guard (0..<configuration.deviceCount).contains(index) else { throw PluginErrno.noDevice }
        return DeviceInfo(
            name: "sim\(index)", flags: .simulated, memoryBytes: configuration.memoryBytes,
            pageSizes: SimDeviceConfiguration.pageTableSizes, location: "sim:\(index)")
    }

    public func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice {
        guard (0..<configuration.deviceCount).contains(index) else { throw PluginErrno.noDevice }
        return try SimDeviceInstance(
            index: index, hostDevice: hostDevice, configuration: configuration, host: host, peers: peers)
    }
}
