import Glibc
import CSVMPluginABI
import SVMPluginKit
import Testing

@testable import SVMFramework

@Suite("Plugin ABI")
struct ABITests {
    @Test("A smaller struct_size from an older side is never written past")
    func copyPrefixRespectsOwnerSize() {
        // An older host whose svm_device_info ended before memory_bytes.
        let olderSize = MemoryLayout<svm_device_info>.offset(of: \.memory_bytes)!
        var destination = svm_device_info()
        destination.struct_size = UInt32(olderSize)
        destination.memory_bytes = 0xDEAD
        let info = DeviceInfo(name: "sim0", flags: .simulated, memoryBytes: 1 << 30, pageSizes: [4096])
        info.raw.copyPrefix(into: &destination)
        #expect(destination.struct_size == UInt32(olderSize))
        #expect(destination.memory_bytes == 0xDEAD)
        #expect(DeviceInfo(destination).name == "sim0")
        // Read back through the older size, the newer members are absent, not garbage.
        #expect(DeviceInfo(destination).memoryBytes == 0)
    }

    @Test("has(_:) follows struct_size")
    func hasMember() {
        var ops = svm_interconnect_ops.sized()
        #expect(ops.has(\.can_connect))
        ops.struct_size = UInt32(MemoryLayout<svm_interconnect_ops>.offset(of: \.can_connect)!)
        #expect(!ops.has(\.can_connect))
        #expect(ops.has(\.link_info))
    }

    @Test("Names are cut to SVM_NAME_MAX - 1 bytes and read without a terminator")
    func names() {
        let long = String(repeating: "x", count: 100)
        var raw = DeviceInfo(name: long, flags: [], memoryBytes: 0, pageSizes: []).raw
        #expect(DeviceInfo(raw).name == String(repeating: "x", count: Int(SVM_NAME_MAX) - 1))
        withUnsafeMutableBytes(of: &raw.name) { bytes in for i in bytes.indices { bytes[i] = 0x41 } }
        #expect(DeviceInfo(raw).name == String(repeating: "A", count: Int(SVM_NAME_MAX)))
    }

    @Test("Plugin names follow [A-Za-z0-9_.-]{1,63}")
    func pluginNames() {
        #expect(PluginIdentity.problem(withName: "Sim_Device-2.0") == nil)
        #expect(PluginIdentity.problem(withName: "") != nil)
        #expect(PluginIdentity.problem(withName: "a b") != nil)
        #expect(PluginIdentity.problem(withName: String(repeating: "a", count: 64)) != nil)
    }

    @Test("Errnos travel as negative statuses and back")
    func statuses() throws {
        #expect(PluginErrno.outOfMemory.status == -ENOMEM)
        #expect(PluginErrno(status: 0) == nil)
        #expect(PluginErrno(status: -EAGAIN) == .tryAgain)
        #expect(throws: PluginErrno.badAddress) { try PluginErrno.check(-EFAULT) }
        struct Unexpected: Error {}
        var reported: [String] = []
        #expect(PluginErrno.status(reporting: { reported.append("\($0)") }) { throw Unexpected() } == -EIO)
        #expect(reported.count == 1)
        #expect(PluginErrno.status { throw PluginOptionError(plugin: "P", key: "k", value: "v", expected: "e") } == -EINVAL)
    }
}

@Suite("Host services")
struct HostServicesTests {
    final class RecordingFaultHandler: DeviceFaultHandler {
        let seen = Mutex<[(UInt64, UInt64, DeviceAccess)]>([])
        func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
            seen.withLock { $0.append((hostDevice, address, access)) }
            if address == 0 { throw PluginErrno.badAddress }
        }
    }

    func makeServices(options: [String: String] = [:], clock: SimulationClock = SimulationClock(), log: LogCollector = LogCollector())
        -> PluginServices
    {
        PluginServices(pluginName: "P", options: options, clock: clock, faultHandler: nil, logHandler: log.handler)
    }

    @Test("config_get copies, cuts and reports the full length; ENOENT when unset")
    func config() {
        let services = makeServices(options: ["memory": "2G", "long": String(repeating: "v", count: 300)])
        let plugin = HostServices(services.table)
        #expect(plugin.config("memory") == "2G")
        #expect(plugin.config("long") == String(repeating: "v", count: 300))
        #expect(plugin.config("absent") == nil)
        var small = [CChar](repeating: 0x7f, count: 4)
        let length = services.table.pointee.config_get!(services.table.pointee.host_ctx, "long", &small, 4)
        #expect(length == 300)
        #expect(small == [0x76, 0x76, 0x76, 0])
        #expect(services.table.pointee.config_get!(services.table.pointee.host_ctx, "absent", &small, 4) == Int64(-ENOENT))
    }

    @Test("The clock service reads the host's simulated clock")
    func clock() {
        let clock = SimulationClock()
        let plugin = HostServices(makeServices(clock: clock).table)
        #expect(plugin.now() == 0)
        clock.advance(to: 1_500)
        clock.advance(to: 900)  // never backwards
        #expect(plugin.now() == 1_500)
    }

    @Test("Device faults reach the attached handler; without one they are bad addresses")
    func faults() throws {
        let services = makeServices()
        let plugin = HostServices(services.table)
        #expect(throws: PluginErrno.badAddress) {
            try plugin.reportDeviceFault(hostDevice: 1, address: 0x1000, access: .read)
        }
        let handler = RecordingFaultHandler()
        services.faultHandler.withLock { $0 = handler }
        try plugin.reportDeviceFault(hostDevice: 3, address: 0x7000, access: [.write, .atomic])
        #expect(throws: PluginErrno.badAddress) { try plugin.reportDeviceFault(hostDevice: 3, address: 0, access: .read) }
        let seen = handler.seen.withLock { $0 }
        #expect(seen.count == 2)
        #expect(seen[0].0 == 3 && seen[0].1 == 0x7000 && seen[0].2 == [.write, .atomic])
    }

    @Test("Log lines carry the plugin's name and level; errors are kept for init failures")
    func log() {
        let log = LogCollector()
        let services = makeServices(log: log)
        let plugin = HostServices(services.table)
        plugin.log(.warning, "careful")
        plugin.log(.error, "broken")
        #expect(log.all == [
            PluginLogRecord(plugin: "P", level: .warning, message: "careful"),
            PluginLogRecord(plugin: "P", level: .error, message: "broken"),
        ])
        #expect(services.lastError.withLock { $0 } == "broken")
    }
}

import Synchronization
