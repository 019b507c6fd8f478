import CSVMPluginABI
import SVMPluginKit

// 1. One exporter per plugin, and the entry symbol the host looks up with dlsym.
private let exporter = PluginExporter(device: ExampleSwiftPlugin.self)

@_cdecl("svm_plugin_entry")
public func svmPluginEntry(_ request: UnsafePointer<svm_plugin_request>?)
    -> UnsafePointer<svm_plugin_descriptor>?
{
    exporter.entry(request)
}

// 2. The plugin: its identity, its set-up, and the device ops.
public final class ExampleSwiftPlugin: DevicePlugin {
    public static let identity = PluginIdentity(
        name: "ExampleSwift", version: "1.0.0",
        description: "Example device plugin written in Swift", kind: .device)

    let memoryBytes: UInt64

    public required init(host: HostServices) throws {
        // Options come from `--plugin-option ExampleSwift.memory=2G`.
        let text = host.config("memory") ?? "1G"
        guard let bytes = ByteCount.parse(text), bytes > 0 else {
            throw PluginOptionError(
                plugin: "ExampleSwift", key: "memory", value: text, expected: "a size, e.g. 2G")
        }
        memoryBytes = bytes
        host.log(.info, "ready at simulated time \(host.now()) ns")
    }

    public func deviceCount() throws -> Int { 1 }

    public func deviceInfo(at index: Int) throws -> DeviceInfo {
        guard index == 0 else { throw PluginErrno.noDevice }
        return DeviceInfo(
            name: "swift0", flags: .simulated, memoryBytes: memoryBytes,
            pageSizes: [4096, 2 << 20])
    }

    public func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice {
        guard index == 0 else { throw PluginErrno.noDevice }
        return ExampleSwiftDevice(memoryBytes: memoryBytes)
    }
}

// 3. An open device and its pagemap.
final class ExampleSwiftDevice: OpenDevice {
    let memoryBytes: UInt64

    init(memoryBytes: UInt64) { self.memoryBytes = memoryBytes }

    func pagemapInfo() throws -> PagemapInfo {
        PagemapInfo(minPageSize: 4096, capacityBytes: memoryBytes)
    }

    func close() {}
}
