import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// The copy path with a plugin written in C: the example plugin built with
/// `EXAMPLE_DEVICE_MEMORY` has device memory it declares private (ABI 1.5) but not host
/// memory, so every migration copies (staging memory and `copy_to_devmem` / `copy_to_ram`).
@Suite struct CPluginMigrationTests {
    static let chunk = 2 << 20

    struct Fixture {
        let folder: TemporaryDirectory
        let host: PluginHost
        let context: SVMContext
        let device: SVMDevice

        /// - Parameter memoryMiB: the plugin's device memory.
        init(memoryMiB: Int = 16) throws {
            folder = try TemporaryDirectory()
            try CPluginCompiler.compile(defines: ["EXAMPLE_DEVICE_MEMORY"], output: folder.file("libexample.so"))
            host = makeHost(builtins: false, paths: [folder.file("libexample.so")], options: ["ExampleC": ["memory-mib": "\(memoryMiB)"]])
            context = SVMContext(host: host)
            device = try context.openDevice(plugin: "ExampleC")
        }

        func fault(_ address: UInt64, _ access: DeviceAccess = .read) throws {
            try context.handleDeviceFault(hostDevice: device.deviceID, address: address, access: access)
        }

        func count(_ name: String) -> Int { context.statistics.snapshot[name]! }

        func shutdown() {
            context.close(device)
            context.shutdown()
        }
    }

    @Test("The C plugin declares its device memory private while the device is open: a device fault there is refused")
    func privateDeviceMemory() throws {
        // A size no other test's device has, since tests run alongside in this process.
        let size = UInt64(23 << 20)
        let f = try Fixture(memoryMiB: 23)
        let memory = try #require(PrivateMemory.process.declared.first { $0.size == size }, "not declared")
        #expect(throws: PluginErrno.badAddress) { try f.fault(memory.start + 4096, .write) }
        #expect(f.context.space.range(containing: memory.start + 4096) == nil)
        f.shutdown()
        #expect(!PrivateMemory.process.declared.contains(memory), "still declared after close")
    }

    @Test("A device fault copies the range into the C plugin's memory; a CPU fault copies it back")
    func copyPathRoundTrip() throws {
        let f = try Fixture()
        defer { f.shutdown() }
        #expect(f.host.failures.isEmpty, "\(f.host.failures)")
        #expect(!f.device.pagemap.isZeroCopy && f.device.pagemap.zeroCopyUnavailableReason == nil)
        let buffer = MappedBuffer(size: 2 * Self.chunk)
        buffer.fill(seed: 21)
        try f.fault(buffer.address + 100)
        let range = try #require(f.context.space.range(containing: buffer.address))
        guard case .device(let allocation) = range.residency.current else {
            Issue.record("not migrated: \(range.residency.current)"); return
        }
        #expect(allocation.pagemap === f.device.pagemap && allocation.hostAddress == nil)
        #expect(!f.context.space.cpu.pagesPresent(range.interval))
        #expect(f.device.usedDeviceMemory == 0, "the example does not count used bytes")
        #expect(f.count("bytesCopied") == Self.chunk && f.count("bytesMoved") == 0)
        #expect(buffer.mismatches(seed: 21) == 0)
        #expect(range.residency.current == .system)
        #expect(f.count("cpuFaultMigrations") == 1 && f.count("bytesCopied") == 2 * Self.chunk)
    }

    @Test("Untouched memory migrates as zeros; a full device evicts the least recently used range")
    func zerosAndEviction() throws {
        let f = try Fixture(memoryMiB: 4)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 3 * Self.chunk)
        buffer.fill(seed: 22, Self.chunk..<3 * Self.chunk)
        for index in 0..<3 { try f.fault(buffer.address + UInt64(index * Self.chunk), .write) }
        // Two chunks fit: the third evicted the first.
        #expect(f.count("migrationsToDevice") == 3 && f.count("evictions") == 1)
        #expect(f.context.space.range(containing: buffer.address)?.residency.current == .system)
        #expect(buffer.nonZero(0..<Self.chunk) == 0)
        #expect(buffer.mismatches(seed: 22, Self.chunk..<3 * Self.chunk) == 0)
    }
}
