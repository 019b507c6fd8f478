import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

@Suite("XeDevice discovery")
struct XeDeviceDiscoveryTests {
    @Test("On a recorded machine only the Intel display function bound to xe is a device")
    func recordedMachine() throws {
        let log = LogCollector()
        let host = makeHost(options: ["XeDevice": ["sysfs-root": PackagePaths.fixture("xe-sysfs")]], log: log)
        let driver = try #require(host.plugin(named: "XeDevice")?.device)
        #expect(try driver.deviceCount() == 1)
        let info = try driver.deviceInfo(at: 0)
        #expect(info.name == "xe-0000:03:00.0")
        #expect(info.flags == .hardware)
        #expect(info.vendorID == 0x8086 && info.deviceID == 0xe20b)
        let notes = log.all.filter { $0.plugin == "XeDevice" }.map(\.message)
        #expect(notes.contains("0000:00:02.0: Intel display function, driver i915, not xe"))
        #expect(notes.contains("0000:04:00.0: Intel display function, driver none, not xe"))
        // The recorded render node does not exist on this machine: opening fails cleanly.
        #expect(throws: (any Error).self) { try driver.openDevice(at: 0, hostDevice: 0) }
    }

    @Test("Without an Xe GPU the plugin loads with no devices and says why")
    func noHardware() throws {
        let log = LogCollector()
        let folder = try TemporaryDirectory()
        let host = makeHost(options: ["XeDevice": ["sysfs-root": folder.path]], log: log)
        let driver = try #require(host.plugin(named: "XeDevice")?.device)
        #expect(try driver.deviceCount() == 0)
        #expect(throws: PluginErrno.noDevice) { try driver.deviceInfo(at: 0) }
        #expect(log.all.contains { $0.plugin == "XeDevice" && $0.message.hasPrefix("no Intel Xe GPU found") })
    }
}
