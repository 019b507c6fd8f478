import Foundation
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// Collects what plugins log, from any thread.
final class LogCollector: Sendable {
    private let records = Locked<[PluginLogRecord]>([])
    var all: [PluginLogRecord] { records.withLock { $0 } }
    var handler: @Sendable (PluginLogRecord) -> Void { { record in self.records.withLock { $0.append(record) } } }
}

func makeHost(
    builtins: Bool = true, paths: [String] = [], options: [String: [String: String]] = [:],
    log: LogCollector = LogCollector(), clock: SimulationClock = SimulationClock()
) -> PluginHost {
    PluginHost(
        configuration: PluginHost.Configuration(
            searchPath: PluginSearchPath(
                builtinDirectory: builtins ? PackagePaths.buildProducts : nil, commandLineEntries: paths),
            options: options, clock: clock, logHandler: log.handler))
}

@Suite("Plugin host")
struct PluginHostTests {
    @Test("The three built-in plugins load from their .so through dlopen")
    func builtinsLoad() throws {
        let host = makeHost()
        #expect(host.failures.isEmpty, "\(host.failures)")
        #expect(host.plugins.map(\.name) == ["SimDevice", "XeDevice", "P2PFabric"])
        for plugin in host.plugins {
            #expect(plugin.path == PackagePaths.product("lib\(plugin.name).so"))
            #expect(plugin.origin == .builtin)
            #expect(plugin.negotiatedABI == ABIVersion.current)
        }
        #expect(host.plugin(named: "SimDevice")?.kind == .device)
        #expect(host.plugin(named: "P2PFabric")?.kind == .interconnect)
        #expect(host.plugin(named: "P2PFabric")?.interconnect != nil)
    }

    @Test("A plugin written in C loads at run time and works through the ABI")
    func cPluginWorks() throws {
        let log = LogCollector()
        let host = makeHost(
            builtins: false, paths: [PackagePaths.product("libExampleCPlugin.so")],
            options: ["ExampleC": ["memory-mib": "512"]], log: log)
        #expect(host.failures.isEmpty, "\(host.failures)")
        let plugin = try #require(host.plugin(named: "ExampleC"))
        #expect(plugin.version == "1.0.0")
        #expect(plugin.origin == .commandLine)
        let driver = try #require(plugin.device)
        #expect(try driver.deviceCount() == 1)
        let info = try driver.deviceInfo(at: 0)
        #expect(info.name == "example0")
        #expect(info.flags == .simulated)
        #expect(info.memoryBytes == 512 << 20)
        #expect(info.pageSizes == [4096, 2 << 20])
        #expect(throws: PluginErrno.noDevice) { try driver.deviceInfo(at: 1) }
        let device = try driver.openDevice(at: 0, hostDevice: 7)
        #expect(try device.pagemapInfo() == PagemapInfo(minPageSize: 4096, capacityBytes: 512 << 20))
        device.close()
        #expect(throws: PluginErrno.noDevice) { try device.pagemapInfo() }
        #expect(log.all.contains(PluginLogRecord(
            plugin: "ExampleC", level: .info, message: "example plugin ready: 512 MiB of device memory")))
    }

    @Test("A plugin outlives its host while used; fini runs once, after its last device closes")
    func lifetime() throws {
        let log = LogCollector()
        var device: (any OpenDevice)?
        do {
            var driver: (any DeviceDriver)?
            do {
                let host = makeHost(builtins: false, paths: [PackagePaths.product("libExampleCPlugin.so")], log: log)
                driver = host.plugin(named: "ExampleC")?.device
            }
            // The host is gone; the driver still works.
            #expect(try driver?.deviceCount() == 1)
            device = try driver?.openDevice(at: 0, hostDevice: 1)
        }
        let finalised = { log.all.filter { $0.message == "example plugin finalised" }.count }
        #expect(finalised() == 0)
        #expect(try device?.pagemapInfo().capacityBytes == 256 << 20)
        device = nil
        #expect(finalised() == 1)
    }

    @Test("Broken plugins are each refused with their reason while the good ones load")
    func brokenPluginsRefused() throws {
        let folder = try TemporaryDirectory()
        try CPluginCompiler.compile(defines: ["EXAMPLE_ABI_MAJOR=2", "EXAMPLE_NAME=\"Major2\""], output: folder.file("libmajor2.so"))
        try CPluginCompiler.compile(defines: ["EXAMPLE_ENTRY=not_the_entry"], output: folder.file("libnoentry.so"))
        try CPluginCompiler.compile(defines: ["EXAMPLE_WITHOUT_DEVICE_INFO", "EXAMPLE_NAME=\"NoInfo\""], output: folder.file("libnoinfo.so"))
        try CPluginCompiler.compile(defines: ["EXAMPLE_INIT_FAILS", "EXAMPLE_NAME=\"InitFails\""], output: folder.file("libinitfails.so"))
        try CPluginCompiler.compile(output: folder.file("libexample.so"))
        try CPluginCompiler.compile(output: folder.file("libexample2.so"))
        try "not an ELF file\n".write(toFile: folder.file("libtext.so"), atomically: true, encoding: .utf8)
        try "ignored: not named like a shared object".write(toFile: folder.file("notes.txt"), atomically: true, encoding: .utf8)

        let host = makeHost(paths: [folder.path, folder.path + "/missing-folder"])
        #expect(host.plugins.map(\.name) == ["SimDevice", "XeDevice", "P2PFabric", "ExampleC"])
        #expect(host.plugin(named: "ExampleC")?.path == folder.file("libexample.so"))

        let reasons = Dictionary(uniqueKeysWithValues: host.failures.map { ($0.path, $0.reason) })
        #expect(reasons.count == 7, "\(host.failures)")
        #expect(reasons[folder.file("libmajor2.so")]
            == .abiMajorMismatch(plugin: ABIVersion(major: 2, minor: ABIVersion.current.minor), host: .current))
        #expect(reasons[folder.file("libnoentry.so")] == .noEntrySymbol)
        #expect(reasons[folder.file("libnoinfo.so")] == .missingRequiredOp("device_ops.device_info"))
        #expect(reasons[folder.file("libinitfails.so")]
            == .initFailed(.noDevice, detail: "no example hardware (built with EXAMPLE_INIT_FAILS)"))
        #expect(reasons[folder.file("libexample.so")] == nil)
        #expect(reasons[folder.file("libexample2.so")] == .duplicateName("ExampleC", loadedFrom: folder.file("libexample.so")))
        guard case .notSharedObject(let message)? = reasons[folder.file("libtext.so")] else {
            Issue.record("libtext.so: \(String(describing: reasons[folder.file("libtext.so")]))")
            return
        }
        #expect(message == "16 bytes: too short for an ELF header")
        guard case .notFound? = reasons[folder.path + "/missing-folder"] else {
            Issue.record("missing folder not reported")
            return
        }
        // Every message is one line and names its file.
        for failure in host.failures {
            #expect(!failure.description.contains("\n"))
            #expect(failure.description.hasPrefix(failure.path + ": "))
        }
    }

    @Test("A duplicate of a built-in plugin is refused and the built-in stays")
    func duplicateOfBuiltin() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: PackagePaths.product("libSimDevice.so"), toPath: folder.file("libMySim.so"))
        let host = makeHost(paths: [folder.path])
        #expect(host.plugin(named: "SimDevice")?.path == PackagePaths.product("libSimDevice.so"))
        #expect(host.failures.map(\.reason) == [.duplicateName("SimDevice", loadedFrom: PackagePaths.product("libSimDevice.so"))])
    }

    @Test("The same file reached twice through the search path is loaded once, silently")
    func sameFileTwice() {
        let host = makeHost(paths: [PackagePaths.product("libSimDevice.so"), PackagePaths.buildProducts + "/./libSimDevice.so"])
        #expect(host.failures.isEmpty, "\(host.failures)")
        #expect(host.plugins.filter { $0.name == "SimDevice" }.count == 1)
    }

    @Test("A plugin whose options are invalid fails init with EINVAL and its message")
    func invalidOptions() {
        let host = makeHost(options: ["SimDevice": ["memory": "3x"]])
        #expect(host.plugin(named: "SimDevice") == nil)
        #expect(host.plugin(named: "XeDevice") != nil)
        #expect(host.failures.map(\.reason) == [
            .initFailed(.invalidArgument, detail: "option SimDevice.memory=3x is invalid: expected a multiple of 2 MiB, e.g. 512M or 4G")
        ])
    }

    @Test("SimDevice's timing options outside their range are refused, naming it", arguments: [
        ("clock", "1e-300", "a number of GHz from 0.001 to 1000.0"),
        ("clock", "inf", "a number of GHz from 0.001 to 1000.0"),
        ("memory-bandwidth", "1e300", "a number of GB/s from 0.001 to 1000000.0"),
    ])
    func timingOptionsOutOfRange(key: String, value: String, expected: String) {
        let host = makeHost(options: ["SimDevice": [key: value]])
        #expect(host.plugin(named: "SimDevice") == nil)
        #expect(host.failures.map(\.reason) == [
            .initFailed(.invalidArgument, detail: "option SimDevice.\(key)=\(value) is invalid: expected \(expected)")
        ])
    }

    @Test("SimDevice options shape its devices and pagemaps")
    func simDeviceOptions() throws {
        let host = makeHost(options: ["SimDevice": ["devices": "3", "memory": "512M", "min-page": "64K"]])
        let driver = try #require(host.plugin(named: "SimDevice")?.device)
        #expect(try driver.deviceCount() == 3)
        let info = try driver.deviceInfo(at: 2)
        #expect(info.name == "sim2")
        #expect(info.memoryBytes == 512 << 20)
        #expect(info.pageSizes == [4 << 10, 64 << 10, 2 << 20])
        let device = try driver.openDevice(at: 2, hostDevice: 2)
        defer { device.close() }
        let pagemap = try device.pagemapInfo()
        #expect(pagemap.minPageSize == 64 << 10 && pagemap.capacityBytes == 512 << 20 && pagemap.usedBytes == 0)
        #expect(pagemap.hostSize == 512 << 20, "zero-copy by default: all device memory is host memory")
        #expect(throws: PluginErrno.noDevice) { try driver.openDevice(at: 3, hostDevice: 3) }
    }

    @Test("P2PFabric describes its link and joins only simulated devices")
    func p2pFabric() throws {
        let fabric = try #require(makeHost().plugin(named: "P2PFabric")?.interconnect)
        #expect(try fabric.linkInfo().linkProtocol == .fabric)
        #expect(try fabric.linkInfo().bandwidthBytesPerSecond == 25_000_000_000)
        let sim = DeviceInfo(name: "a", flags: .simulated, memoryBytes: 1, pageSizes: [4096])
        let real = DeviceInfo(name: "b", flags: .hardware, memoryBytes: 1, pageSizes: [4096])
        #expect(try fabric.canConnect(sim, sim))
        #expect(try !fabric.canConnect(sim, real))

        let pcie = try #require(makeHost(options: ["P2PFabric": ["protocol": "pcie", "latency": "1500"]])
            .plugin(named: "P2PFabric")?.interconnect)
        #expect(try pcie.linkInfo().linkProtocol == .pciePeerToPeer)
        // 16 GT/s x 16 lanes x 128/130 / 8 bits: PCI-SIG's "31.5 GB/s".
        #expect(try pcie.linkInfo().bandwidthBytesPerSecond == 31_507_692_308)
        #expect(try pcie.linkInfo().latencyNanoseconds == 1500)

        let bad = makeHost(options: ["P2PFabric": ["protocol": "carrier-pigeon"]])
        #expect(bad.plugin(named: "P2PFabric") == nil)
        #expect(bad.failures.first?.explanation.contains("P2PFabric.protocol=carrier-pigeon") == true)
    }
}
