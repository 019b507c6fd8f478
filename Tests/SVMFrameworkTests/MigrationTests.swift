import CSVMPlatform
import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// The migration machinery of the SVM context with a device that only has memory and a
/// recording page table: faults are raised by calling the fault handler directly, CPU
/// faults by touching the memory.
@Suite struct MigrationTests {
    static let chunk = 2 << 20

    struct Fixture {
        let context = SVMContext()
        let fake: RecordingDevice
        let device: SVMDevice

        init(deviceMemory: UInt64 = 16 << 20, policy: MigrationPolicy = .migrateOnDeviceFault) {
            fake = RecordingDevice(capacity: deviceMemory)
            device = context.adopt(fake, id: context.reserveDeviceID(), name: "fake")
        }

        func fault(_ address: UInt64, _ access: DeviceAccess = .read) throws {
            try context.handleDeviceFault(hostDevice: device.deviceID, address: address, access: access)
        }

        func residency(_ address: UInt64) -> Residency? { context.space.range(containing: address)?.residency.current }

        func count(_ name: String) -> Int { context.statistics.snapshot[name]! }
    }

    @Test func deviceFaultMigratesAndCPUFaultBringsDataBack() throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        #expect(f.context.mirrorUnavailableReason == nil)
        let buffer = MappedBuffer(size: 2 * Self.chunk)
        buffer.fill(seed: 1)
        try f.fault(buffer.address + 100)
        let range = try #require(f.context.space.range(containing: buffer.address))
        guard case .device(let allocation) = range.residency.current else {
            Issue.record("not migrated: \(range.residency.current)"); return
        }
        #expect(range.interval == AddressInterval(start: buffer.address, end: buffer.address + UInt64(Self.chunk)))
        #expect(!f.context.space.cpu.pagesPresent(range.interval))
        #expect(f.fake.memory.load(fromByteOffset: Int(allocation.offset) + 5, as: UInt8.self) == MappedBuffer.pattern(5, seed: 1))
        #expect(buffer.mismatches(seed: 1) == 0)
        #expect(range.residency.current == .system)
        #expect(f.count("cpuFaultMigrations") == 1)
        #expect(f.count("migrationsToDevice") == 1)
        #expect(f.count("bytesToSystem") == Self.chunk)
    }

    @Test func untouchedMemoryMigratesAsZeroAndReadsZero() throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        try f.fault(buffer.address, .write)
        #expect(f.residency(buffer.address) != .system)
        #expect(buffer.nonZero(0..<Self.chunk) == 0)
    }

    @Test func unmappedAndProtectedMemoryGiveDeviceFaultErrors() throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk, protection: PROT_NONE)
        #expect(throws: PluginErrno.accessDenied) { try f.fault(buffer.address) }
        mprotect(buffer.base, Self.chunk, PROT_READ)
        #expect(throws: PluginErrno.accessDenied) { try f.fault(buffer.address, .write) }
        try f.fault(buffer.address)  // reads are allowed now
        mprotect(buffer.base, Self.chunk, PROT_READ | PROT_WRITE)
        try f.fault(buffer.address, .write)
        // Below vm.mmap_min_addr: never mapped, whatever the tests alongside do.
        #expect(throws: PluginErrno.badAddress) { try f.fault(0x4000) }
        #expect(f.count("failedDeviceFaults") == 3)
    }

    @Test func sharedMemoryIsMappedInPlaceAndNeverMigrates() throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk, shared: true)
        buffer.fill(seed: 3)
        try f.fault(buffer.address + 8192, .write)
        #expect(f.residency(buffer.address) == .system)
        let bind = try #require(f.fake.state.withLock { $0.binds.last })
        #expect(bind.1.first?.linkProtocol == .system)
        #expect(f.count("migrationsToDevice") == 0)
        #expect(buffer.mismatches(seed: 3) == 0)
    }

    @Test func evictionTakesTheLeastRecentlyUsedRange() throws {
        let f = Fixture(deviceMemory: UInt64(2 * Self.chunk))
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: 3 * Self.chunk)
        buffer.fill(seed: 4)
        let starts = (0..<3).map { buffer.address + UInt64($0 * Self.chunk) }
        try f.fault(starts[0])
        try f.fault(starts[1])
        try f.fault(starts[0])  // used again: range 1 is now the oldest
        try f.fault(starts[2])
        #expect(f.count("evictions") == 1)
        #expect(f.residency(starts[1]) == .system)
        // The evicted data is back in CPU pages without a CPU fault.
        #expect(f.context.space.cpu.pagesPresent(AddressInterval(start: starts[1], end: starts[1] + UInt64(Self.chunk))))
        #expect(buffer.mismatches(seed: 4, Self.chunk..<2 * Self.chunk) == 0)
        #expect(f.count("cpuFaultMigrations") == 0)
        #expect(buffer.mismatches(seed: 4) == 0)
    }

    @Test(arguments: [0, Self.chunk / 4, Self.chunk / 2])
    func partialUnmapAfterMigrationKeepsTheRest(offset: Int) throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 5)
        try f.fault(buffer.address)
        let range = try #require(f.context.space.range(containing: buffer.address))
        let hole = 64 << 10
        buffer.unmap(offset..<offset + hole)
        // What is still mapped has its data back in CPU pages. (munmap returns once the
        // handler has read the event; reading the rest faults, and the handler serves that
        // fault after it has handled the unmap.)
        #expect(buffer.mismatches(seed: 5, 0..<offset) == 0)
        #expect(buffer.mismatches(seed: 5, (offset + hole)..<Self.chunk) == 0)
        // The whole range ends.
        #expect(range.flags.load().contains(.unmapped))
        #expect(range.residency.current == .system)
        #expect(f.fake.state.withLock { $0.free[UInt64(Self.chunk)]?.count } == 1)
        // The device refaults what remains: a new, smaller range.
        try f.fault(buffer.address + UInt64(offset + hole))
        #expect(f.context.space.range(containing: buffer.address + UInt64(offset + hole)) !== range)
    }

    @Test func discardingDeviceResidentMemoryReadsZero() throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 6)
        try f.fault(buffer.address)
        madvise(buffer.base + 4096, 8192, MADV_DONTNEED)
        #expect(buffer.mismatches(seed: 6, 0..<4096) == 0)
        #expect(buffer.nonZero(4096..<12288) == 0)
        #expect(buffer.mismatches(seed: 6, 12288..<Self.chunk) == 0)
        madvise(buffer.base, Self.chunk, MADV_DONTNEED)
        #expect(buffer.nonZero(0..<Self.chunk) == 0)
    }

    @Test(arguments: [false, true])
    func mremapCarriesDeviceResidentData(dontUnmap: Bool) throws {
        let f = Fixture()
        defer { f.context.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 7)
        try f.fault(buffer.address)
        let target = MappedBuffer(size: Self.chunk)
        var moved: UnsafeMutableRawPointer?
        let status = dontUnmap
            ? svm_mremap_dontunmap(buffer.base, UInt64(Self.chunk), target.base, &moved)
            : svm_mremap_fixed(buffer.base, UInt64(Self.chunk), UInt64(Self.chunk), target.base, &moved)
        #expect(status == 0)
        #expect(moved == target.base)
        #expect(target.mismatches(seed: 7) == 0)
        if dontUnmap {
            #expect(buffer.nonZero(0..<Self.chunk) == 0)
        } else {
            buffer.forget()
        }
        #expect(f.context.space.range(containing: buffer.address)?.flags.load().contains(.unmapped) ?? true)
    }

    /// A device fault that keeps failing says why when it gives up: here every device-memory
    /// allocation fails, and device atomics need device memory.
    @Test func faultGivingUpNamesWhy() throws {
        let f = try SimDeviceFixture(options: ["fail-alloc-every": "1"])
        defer { f.shutdown() }
        f.context.faultTimeout = .milliseconds(300)
        let buffer = MappedBuffer(size: 2 << 20)
        buffer.fill(seed: 1)
        let result = try f.device.run(.increment(destination: buffer.address, size: 4096, addend: 1))
        #expect(result.stoppedBy == .tryAgain)
        let why = try #require(f.device.lastFaultFailure)
        #expect(why.hasPrefix("the device fault at 0x\(String(buffer.address, radix: 16)) (atomic) in range [0x"), "\(why)")
        #expect(why.contains("gave up after 0.3 seconds"), "\(why)")
        #expect(why.contains("device memory allocation failed"), "\(why)")
        let error = ExperimentError.kernelStopped(kernel: "k", status: .tryAgain, address: buffer.address, why: why)
        #expect("\(error)".hasSuffix("; " + why))
    }
}
