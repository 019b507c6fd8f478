import Glibc
import SVMPluginKit
import Synchronization
import Testing

@testable import SVMFramework

/// A device memory for core tests: allocate/copy work on host memory, binds are recorded.
final class RecordingDevice: OpenDevice, @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    let capacity: UInt64
    let state = Mutex<(next: UInt64, binds: [(UInt64, [BindPiece])], zaps: Int, free: [UInt64: [UInt64]])>((0, [], 0, [:]))

    init(capacity: UInt64) {
        self.capacity = capacity
        memory = UnsafeMutableRawPointer.allocate(byteCount: Int(capacity), alignment: 4096)
    }

    func pagemapInfo() throws -> PagemapInfo { PagemapInfo(minPageSize: 4096, capacityBytes: capacity) }
    func close() {}
    func allocateDeviceMemory(size: UInt64) throws -> UInt64 {
        try state.withLock { state in
            if let offset = state.free[size]?.popLast() { return offset }
            guard state.next + size <= capacity else { throw PluginErrno.outOfMemory }
            defer { state.next += size }
            return state.next
        }
    }
    func freeDeviceMemory(offset: UInt64, size: UInt64) { state.withLock { $0.free[size, default: []].append(offset) } }
    func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws {
        memory.advanced(by: Int(offset)).copyMemory(from: source, byteCount: Int(size))
    }
    func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws {
        destination.copyMemory(from: memory.advanced(by: Int(offset)), byteCount: Int(size))
    }
    func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws {
        state.withLock { $0.binds.append((address, pieces)) }
    }
    func zap(address: UInt64, size: UInt64) throws { state.withLock { $0.zaps += 1 } }
}

@Suite struct MirrorSmokeTests {
    @Test func deviceFaultMigratesAndCPUFaultBringsDataBack() throws {
        let context = SVMContext()
        defer { context.shutdown() }
        #expect(context.mirrorUnavailableReason == nil)
        let fake = RecordingDevice(capacity: 8 << 20)
        let device = context.adopt(fake, id: context.reserveDeviceID(), name: "fake")
        let size = 4 << 20
        let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        defer { munmap(raw, size) }
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: i &* 7) }
        let base = UInt64(UInt(bitPattern: raw))
        let aligned = (base + (2 << 20) - 1) & ~UInt64((2 << 20) - 1)
        try context.handleDeviceFault(hostDevice: device.deviceID, address: aligned + 100, access: .read)
        let range = try #require(context.space.range(containing: aligned))
        guard case .device(let allocation) = range.residency.current else {
            Issue.record("not migrated: \(range.residency.current), \(context.statistics.snapshot)"); return
        }
        #expect(range.interval.size == 2 << 20)
        #expect(!context.space.cpu.pagesPresent(range.interval))
        let offset = Int(aligned - base)
        #expect(fake.memory.load(fromByteOffset: Int(allocation.offset) + 5, as: UInt8.self) == UInt8(truncatingIfNeeded: (offset + 5) &* 7))
        // The CPU reads: the handler migrates the range back.
        var mismatches = 0
        for i in 0..<size where bytes[i] != UInt8(truncatingIfNeeded: i &* 7) { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(range.residency.current == .system)
        #expect(context.statistics.cpuFaultMigrations.load(ordering: .relaxed) == 1)
        #expect(context.statistics.migrationsToDevice.load(ordering: .relaxed) == 1)
    }
}
