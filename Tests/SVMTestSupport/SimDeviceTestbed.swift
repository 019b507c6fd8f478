import SVMFramework
import SVMPluginKit

/// SimDevice loaded from its built `.so` through a ``PluginHost`` (as any plugin is), one
/// device open, and a ``SystemMemoryFaultHandler`` attached to the host.
///
/// ```swift
/// let bed = try SimDeviceTestbed(options: ["memory": "64M"])
/// bed.handler.serve(region.range, writable: true)
/// let result = try bed.device.runKernel(.fill(destination: region.start, size: 4096, byte: 1))
/// ```
///
/// Releasing the testbed detaches the handler and closes the device.
public final class SimDeviceTestbed: Sendable {
    /// The host's handle for the device, passed to open_device.
    public static let hostDevice: UInt64 = 1

    public let host: PluginHost
    public let device: any OpenDevice
    public let handler: SystemMemoryFaultHandler

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameter options: SimDevice's options (`memory`, `min-page`, `devices`).
    public init(options: [String: String] = ["memory": "64M"]) throws {
        host = PluginHost(
            configuration: PluginHost.Configuration(
                searchPath: PluginSearchPath(
                    builtinDirectory: nil, commandLineEntries: [PackagePaths.product("libSimDevice.so")]),
                options: ["SimDevice": options]))
        guard let driver = host.plugin(named: "SimDevice")?.device else {
            throw Failure(description: "SimDevice did not load: \(host.failures)")
        }
        device = try driver.openDevice(at: 0, hostDevice: Self.hostDevice)
        handler = SystemMemoryFaultHandler(device: device)
        host.setDeviceFaultHandler(handler)
    }

    /// Replaces the fault handler (the default one stays reachable as ``handler``).
    public func setFaultHandler(_ handler: any DeviceFaultHandler) {
        host.setDeviceFaultHandler(handler)
    }

    deinit {
        // The host's services live forever and would keep the handler, and through it the
        // device, alive: detach first.
        host.setDeviceFaultHandler(nil)
        device.close()
    }
}
