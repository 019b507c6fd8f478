import CSVMPlatform
import CSVMPluginABI
import Glibc
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

    @Test("Names are cut to SVM_NAME_MAX - 1 bytes; one that fills its buffer with no terminator is read no further, cut with a mark")
    func names() {
        let long = String(repeating: "x", count: 100)
        var raw = DeviceInfo(name: long, flags: [], memoryBytes: 0, pageSizes: []).raw
        #expect(DeviceInfo(raw).name == String(repeating: "x", count: Int(SVM_NAME_MAX) - 1))
        withUnsafeMutableBytes(of: &raw.name) { bytes in for i in bytes.indices { bytes[i] = 0x41 } }
        #expect(DeviceInfo(raw).name == String(repeating: "A", count: Int(SVM_NAME_MAX) - 1) + "… (cut at 63 bytes)")
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

    @Test("Any int32 status maps to an error; undocumented ones are named and taken as EIO", arguments: [
        Int32.min, Int32.max, -12345, 1, -EPERM, -ENOSPC,
    ])
    func undocumentedStatuses(status: Int32) throws {
        let error = try #require(PluginErrno(status: status))
        #expect(error.undocumentedStatus == status)
        #expect(error.code == EIO && error.status == -EIO)
        #expect(error != .ioError, "an undocumented status is not a documented EIO")
        #expect(error.description == "undocumented status \(status) (taken as EIO)")
        #expect(PluginErrno(Int32.min).undocumentedStatus == Int32.min)
        for documented in PluginErrno.documented.keys {
            #expect(PluginErrno(status: -documented) == PluginErrno(documented))
            #expect(PluginErrno(status: -documented)?.undocumentedStatus == nil)
        }
    }

    @Test("Plugin text is bounded, one line and free of control characters")
    func pluginText() {
        #expect(PluginText.sanitized("a\nb\tc\u{1B}[2J\u{7F}\u{85}\u{202E}d", limit: 64) == "a\\nb\\tc\\u{1B}[2J\\u{7F}\\u{85}\\u{202E}d")
        #expect(PluginText.sanitized("é ok", limit: 64) == "é ok")
        #expect(PluginText.sanitized(String(repeating: "x", count: 2000), limit: 10) == "xxxxxxxxxx… (cut at 10 bytes)")
        // A C string read no further than the limit, with or without its NUL there.
        let bytes: [CChar] = Array("abcdef".utf8CString.dropLast().map { $0 })
        bytes.withUnsafeBufferPointer { buffer in
            #expect(PluginText.sanitized(buffer.baseAddress!, limit: 3) == "abc… (cut at 3 bytes)")
        }
    }
}

@Suite("Host services")
struct HostServicesTests {
    final class RecordingFaultHandler: DeviceFaultHandler {
        let seen = Locked<[(UInt64, UInt64, DeviceAccess)]>([])
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

    @Test("A fault or reset reported from inside bind or zap is refused with EINVAL and logged, not served")
    func servicesRefusedInsideBindAndZap() throws {
        let log = LogCollector()
        let services = makeServices(log: log)
        let handler = RecordingFaultHandler()
        services.faultHandler.withLock { $0 = handler }
        let plugin = HostServices(services.table)
        svm_thread_enter_plugin_call_without_host_services()
        #expect(throws: PluginErrno.invalidArgument) { try plugin.reportDeviceFault(hostDevice: 3, address: 0x7000, access: .read) }
        #expect(throws: PluginErrno.invalidArgument) { try plugin.reportDeviceReset(hostDevice: 3) }
        svm_thread_leave_plugin_call_without_host_services()
        #expect(handler.seen.withLock { $0 }.isEmpty)
        #expect(log.all.map(\.message) == [
            "report_device_fault called from inside bind or zap, which the ABI forbids: refused with EINVAL",
            "report_device_reset called from inside bind or zap, which the ABI forbids: refused with EINVAL",
        ])
        // Outside them, served again.
        try plugin.reportDeviceFault(hostDevice: 3, address: 0x7000, access: .read)
        #expect(handler.seen.withLock { $0 }.count == 1)
    }

    @Test("Kernel counts a plugin reports are cut to 2^48, so that sums cannot overflow")
    func kernelCountsBounded() {
        var raw = svm_kernel_result.sized()
        raw.busy_ns = .max
        raw.accesses = .max
        raw.system_bytes_read = .max
        raw.bytes = .max
        raw.tlb_hits = 7
        let result = KernelResult(raw)
        #expect(result.activity.busyNanoseconds == KernelActivity.countLimit)
        #expect(result.activity.accesses == KernelActivity.countLimit)
        #expect(result.activity.systemBytesRead == KernelActivity.countLimit)
        #expect(result.bytes == KernelActivity.countLimit)
        #expect(result.activity.tlbHits == 7)
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
