import SVMPluginKit

/// One open simulated device.
final class SimDeviceInstance: OpenDevice {
    let index: Int
    let hostDevice: UInt64
    let configuration: SimDeviceConfiguration

    init(index: Int, hostDevice: UInt64, configuration: SimDeviceConfiguration) {
        self.index = index
        self.hostDevice = hostDevice
        self.configuration = configuration
    }

    func pagemapInfo() throws -> PagemapInfo {
        PagemapInfo(
            minPageSize: configuration.minPageSize, capacityBytes: configuration.memoryBytes)
    }

    func close() {}
}
