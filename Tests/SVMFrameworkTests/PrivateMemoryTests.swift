import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// Memory the framework and plugins keep for themselves (``PrivateMemory``): never covered by
/// an SVM range, a device fault on it answered as on unmapped memory.
@Suite("Private memory") struct PrivateMemoryTests {
    static let page: UInt64 = 4096

    @Test("Mapped intervals are declared and withdrawn exactly; bad, unmapped, overlapping and unknown ones are refused")
    func registry() throws {
        let size = 8 * Int(Self.page)
        let area = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(area, size) }
        let base = UInt64(UInt(bitPattern: area))
        // The last page is a hole.
        munmap(area + 7 * Int(Self.page), Int(Self.page))
        let memory = PrivateMemory()
        try memory.add(address: base, size: 4 * Self.page)
        try memory.add(address: base + 6 * Self.page, size: Self.page)
        #expect(memory.contains(base) && memory.contains(base + 4 * Self.page - 1) && memory.contains(base + 6 * Self.page))
        #expect(!memory.contains(base + 4 * Self.page) && !memory.contains(base - 1) && !memory.contains(base + 7 * Self.page))
        #expect(throws: PrivateMemory.Refusal.badInterval) { try memory.add(address: base + 4 * Self.page + 1, size: Self.page) }
        #expect(throws: PrivateMemory.Refusal.badInterval) { try memory.add(address: base + 4 * Self.page, size: 0) }
        #expect(throws: PrivateMemory.Refusal.badInterval) { try memory.add(address: UInt64.max - 4095, size: 2 * Self.page) }
        #expect(throws: PrivateMemory.Refusal.notMapped) { try memory.add(address: base + 7 * Self.page, size: Self.page) }
        #expect(throws: PrivateMemory.Refusal.overlaps(AddressInterval(start: base, end: base + 4 * Self.page))) {
            try memory.add(address: base + 3 * Self.page, size: 2 * Self.page)
        }
        #expect(throws: PrivateMemory.Refusal.notDeclared) { try memory.remove(address: base, size: Self.page) }
        try memory.remove(address: base, size: 4 * Self.page)
        #expect(!memory.contains(base))
        #expect(memory.declared == [AddressInterval(start: base + 6 * Self.page, end: base + 7 * Self.page)])
    }

    @Test("A mapping is cut to the program's part around the address, and is no mapping on private memory")
    func mappingsAreCut() throws {
        let size = 16 * Int(Self.page)
        let area = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(area, size) }
        let base = UInt64(UInt(bitPattern: area))
        let memory = PrivateMemory()
        try memory.add(address: base + 4 * Self.page, size: 4 * Self.page)
        let cpu = ProcessAddressSpace(privateMemory: memory)
        let below = try #require(cpu.mapping(containing: base + 2 * Self.page))
        #expect(below.interval.start <= base && below.interval.end == base + 4 * Self.page)
        #expect(cpu.mapping(containing: base + 5 * Self.page) == nil)
        let above = try #require(cpu.mapping(containing: base + 10 * Self.page))
        #expect(above.interval.start == base + 8 * Self.page && above.interval.end >= base + UInt64(size))
    }

    /// SimDevice's memory and bounce buffer, the mirror's staging: a device touching any of
    /// them gets a fault error, no range is made, and the device keeps working. Without the
    /// declaration a read of the bounce buffer migrated its pages away, and the next kernel's
    /// copy into it, under the page-table lock, deadlocked with the handler's zap: the
    /// child's alarm ends that.
    @Test(arguments: [MigrationPath.zeroCopy, .copy])
    func devicesCannotReachPrivateMemory(path: MigrationPath) async {
        await #expect(processExitsWith: .success) { [path] in
            alarm(60)
            let f = try SimDeviceFixture(options: path.options)
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: 2 << 20)
            buffer.fill(seed: 3)
            // Maps a bounce buffer and, on the copy path, staging.
            _ = try f.run(.fill(destination: buffer.address, size: 4096, byte: 7))
            let declared = PrivateMemory.process.declared
            #expect(declared.contains { $0.size == 64 << 20 }, "SimDevice's memory is not declared: \(declared)")
            #expect(declared.contains { $0.size == 2 << 20 }, "no bounce buffer is declared: \(declared)")
            for interval in declared {
                for address in [interval.start, interval.end - 4096] {
                    let (_, read) = try f.deviceRead(address, 4096)
                    #expect(read.stoppedBy == .badAddress, "a read of \(interval) at 0x\(String(address, radix: 16))")
                    let written = try f.deviceWrite(address, [UInt8](repeating: 0xa5, count: 4096))
                    #expect(written.stoppedBy == .badAddress, "a write of \(interval) at 0x\(String(address, radix: 16))")
                    #expect(f.context.space.range(containing: address) == nil)
                }
            }
            // The device still runs, its bounce buffer whole.
            let (bytes, result) = try f.deviceRead(buffer.address + 4096, 4096)
            #expect(result.stoppedBy == nil)
            #expect(MappedBuffer.holdsPattern(bytes, seed: 3, from: 4096))
        }
    }
}
