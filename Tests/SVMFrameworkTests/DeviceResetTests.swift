import CSVMPlatform
import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// Data whose only copy was in device memory and is gone (a device reset, copies back that
/// keep failing): the loss is reported and the pages are poisoned, never zeros.
@Suite struct DeviceResetTests {
    static let chunk = 2 << 20

    /// Whether the page at `address` is poisoned: it holds an entry (pagemap) that the
    /// kernel cannot read (`EFAULT`). A hole fails to read as well, but has no entry.
    static func isPoisoned(_ address: UInt64) -> Bool {
        let page = AddressInterval(start: address & ~4095, end: (address & ~4095) + 4096)
        var byte: UInt8 = 0
        return PageMap().populatedRuns(page)?.isEmpty == false && svm_process_vm_read(&byte, address, 1) == -Int(EFAULT)
    }

    @Test("A SimDevice reset loses what only its memory held: pages poisoned, the rest intact, device memory freed, faults refused until the memory is discarded")
    func simDeviceReset() throws {
        let f = try SimDeviceFixture(memory: "64M", options: ["reset-after-kernel": "2"])
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 2 * Self.chunk)
        buffer.fill(seed: 7)
        let first = AddressInterval(start: buffer.address, end: buffer.address + UInt64(Self.chunk))
        // Kernel 1 brings both chunks to the device; the CPU takes the second one back.
        let read = try f.deviceRead(buffer.address, 2 * Self.chunk)
        #expect(read.result.stoppedBy == nil)
        #expect(buffer.mismatches(seed: 7, Self.chunk..<2 * Self.chunk) == 0)
        #expect(f.device.pagemap.residents.ranges.count == 1)
        // Kernel 2 changes the first chunk in device memory; then the device resets.
        try f.run(.increment(destination: buffer.address, size: UInt64(Self.chunk), addend: 1))

        #expect(f.context.lostMemory.snapshot == [first])
        #expect(f.count("deviceResets") == 1)
        #expect(f.count("lostRanges") == 1)
        #expect(f.count("lostBytes") == Self.chunk)
        #expect(f.device.pagemap.residents.ranges.isEmpty)
        #expect(f.device.usedDeviceMemory == 0)
        #expect(f.context.space.range(containing: buffer.address)?.residency.current == .system)
        for page in stride(from: 0, to: Self.chunk, by: 4096) {
            guard Self.isPoisoned(buffer.address + UInt64(page)) else {
                Issue.record("page \(page / 4096) of the lost chunk is not poisoned"); break
            }
        }
        #expect(!Self.isPoisoned(buffer.address + UInt64(Self.chunk)))
        #expect(buffer.mismatches(seed: 7, Self.chunk..<2 * Self.chunk) == 0, "the chunk in system memory is intact")

        // The device cannot use the lost data either.
        let refused = try f.deviceRead(buffer.address + 64, 64)
        #expect(refused.result.stoppedBy == .ioError)
        #expect(f.count("faultsOnLostData") >= 1)

        // Discarding the memory ends the loss: it reads as new memory.
        #expect(madvise(buffer.base, Self.chunk, MADV_DONTNEED) == 0)
        f.context.mirror?.waitUntilEventsHandled(deadline: .now + .seconds(10))
        #expect(f.context.lostMemory.snapshot.isEmpty)
        #expect(buffer.nonZero(0..<Self.chunk) == 0)
        try f.run(.fill(destination: buffer.address, size: 4096, byte: 9))
        #expect(buffer.bytes[4095] == 9)
    }

    @Test("Copies back that keep failing lose the data: tried 4 times, then poisoned, reported, refused")
    func copiesBackKeepFailing() throws {
        let context = SVMContext()
        defer { context.shutdown() }
        let fake = RecordingDevice(capacity: 16 << 20)
        let device = context.adopt(fake, id: context.reserveDeviceID(), name: "fake")
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 3)
        try context.handleDeviceFault(hostDevice: device.deviceID, address: buffer.address, access: .read)
        #expect(device.pagemap.residents.ranges.count == 1)
        fake.failCopiesOut.store(true, ordering: .relaxed)
        context.release(device)

        #expect(context.statistics.snapshot["failedCopies"] == Migrator.copyAttempts)
        #expect(context.statistics.snapshot["lostBytes"] == Self.chunk)
        #expect(context.lostMemory.snapshot == [AddressInterval(start: buffer.address, end: buffer.address + UInt64(Self.chunk))])
        #expect(Self.isPoisoned(buffer.address) && Self.isPoisoned(buffer.address + UInt64(Self.chunk) - 4096))
        #expect(throws: PluginErrno.ioError) {
            try context.handleDeviceFault(hostDevice: device.deviceID, address: buffer.address, access: .read)
        }
        // Unmapping ends the loss.
        buffer.unmap(0..<Self.chunk)
        context.mirror?.waitUntilEventsHandled(deadline: .now + .seconds(10))
        #expect(context.lostMemory.snapshot.isEmpty)
    }

    @Test("A reset reported for a device the context does not know is refused")
    func unknownDevice() {
        let context = SVMContext()
        defer { context.shutdown() }
        #expect(throws: PluginErrno.noDevice) { try context.handleDeviceReset(hostDevice: 99) }
    }

    @Test("Lost memory: intervals merge, split when discarded, move with mremap")
    func lostMemoryIntervals() {
        let lost = LostMemory()
        func interval(_ start: UInt64, _ end: UInt64) -> AddressInterval { AddressInterval(start: start, end: end) }
        lost.insert(interval(0x3000, 0x5000))
        lost.insert(interval(0x1000, 0x2000))
        lost.insert(interval(0x2000, 0x3000))  // touches both: one interval
        #expect(lost.snapshot == [interval(0x1000, 0x5000)])
        lost.insert(interval(0x8000, 0x9000))
        #expect(lost.bytes == 0x5000)
        lost.remove(interval(0x2000, 0x3000))
        #expect(lost.snapshot == [interval(0x1000, 0x2000), interval(0x3000, 0x5000), interval(0x8000, 0x9000)])
        #expect(lost.intact(interval(0, 0x4000)) == [interval(0, 0x1000), interval(0x2000, 0x3000)])
        #expect(lost.overlaps(interval(0x4fff, 0x6000)) && !lost.overlaps(interval(0x5000, 0x8000)))
        lost.remap(from: 0x3000, to: 0x20000, length: 0x6000)
        #expect(lost.snapshot == [interval(0x1000, 0x2000), interval(0x20000, 0x22000), interval(0x25000, 0x26000)])
    }
}
