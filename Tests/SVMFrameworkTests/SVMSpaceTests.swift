import SVMPluginKit
import Synchronization
import Testing

@testable import SVMFramework

/// A CPU address space the test controls.
final class FakeCPUAddressSpace: CPUAddressSpace {
    let mappings = Locked<[CPUMapping]>([])
    let absentPages = Locked<Set<UInt64>>([])

    func add(_ start: UInt64, _ end: UInt64, writable: Bool = true, shared: Bool = false) {
        mappings.withLock {
            $0.append(CPUMapping(interval: AddressInterval(start: start, end: end), readable: true, writable: writable, shared: shared, anonymous: true))
        }
    }

    func mapping(containing address: UInt64) -> CPUMapping? {
        mappings.withLock { $0.first { $0.interval.contains(address) } }
    }

    func pagesPresent(_ interval: AddressInterval) -> Bool {
        absentPages.withLock { absent in !absent.contains { interval.contains($0) } }
    }
}

/// A device that records what it was asked to zap.
final class RecordingMapper: SVMDeviceMapper {
    let deviceID: UInt64
    let zapped = Locked<[AddressInterval]>([])
    init(_ id: UInt64) { deviceID = id }
    func zap(_ interval: AddressInterval) { zapped.withLock { $0.append(interval) } }
}

@Suite("SVM space")
struct SVMSpaceTests {
    let cpu = FakeCPUAddressSpace()

    func space() -> SVMSpace { SVMSpace(cpu: cpu) }

    /// A space with one 2 MiB range at 0x4000_0000 that recording device 1 maps.
    func rangeMappedOnDevice1() throws -> (svm: SVMSpace, device: RecordingMapper, range: SVMRange, notifier: Notifier) {
        cpu.add(0x4000_0000, 0x4040_0000)
        let svm = space()
        let device = RecordingMapper(1)
        svm.register(device)
        let (range, notifier) = try svm.findOrInsertRange(faultAddress: 0x4000_0000, write: true)
        svm.notifierLock.withReadLock { _ = range.pages(for: 1).publishLocked([], sequence: notifier.sequence.readBegin(), hasDevmem: false, dma: nil, under: svm.notifierLock) }
        return (svm, device, range, notifier)
    }

    @Test("A fault creates a 2 MiB range; a second fault in it finds the same range")
    func findOrInsert() throws {
        cpu.add(0x4000_0000, 0x4080_0000)
        let svm = space()
        let (range, notifier) = try svm.findOrInsertRange(faultAddress: 0x4012_3456, write: true)
        #expect(range.interval == AddressInterval(start: 0x4000_0000, end: 0x4020_0000))
        #expect(range.flags.load() == [.migrateDevmem])
        #expect(notifier.interval == AddressInterval(start: 0x4000_0000, end: 0x6000_0000))
        let again = try svm.findOrInsertRange(faultAddress: 0x401f_ffff, write: false)
        #expect(again.range === range)
        #expect(svm.counts == (1, 1))
    }

    @Test("Bad addresses and protections are device faults and create nothing")
    func badAccesses() {
        cpu.add(0x1000_0000, 0x1020_0000, writable: false)
        let svm = space()
        #expect(throws: SVMFaultError.notMapped(address: 0x9000_0000)) { try svm.findOrInsertRange(faultAddress: 0x9000_0000, write: false) }
        #expect(throws: SVMFaultError.accessDenied(address: 0x1000_0000, write: true)) { try svm.findOrInsertRange(faultAddress: 0x1000_0000, write: true) }
        #expect(svm.counts == (0, 0))
        #expect((try? svm.findOrInsertRange(faultAddress: 0x1000_0000, write: false)) != nil)
    }

    @Test("A shared mapping gets ranges that may not migrate")
    func shared() throws {
        cpu.add(0x2000_0000, 0x2020_0000, shared: true)
        let (range, _) = try space().findOrInsertRange(faultAddress: 0x2000_0000, write: true)
        #expect(!range.flags.load().contains(.migrateDevmem))
    }

    @Test("Notifiers are per 512 MiB; a range never crosses one")
    func notifiers() throws {
        cpu.add(0x1FFF_0000, 0x2001_0000)
        let svm = space()
        let (low, lowNotifier) = try svm.findOrInsertRange(faultAddress: 0x1FFF_8000, write: false)
        let (high, highNotifier) = try svm.findOrInsertRange(faultAddress: 0x2000_0000, write: false)
        #expect(low.interval == AddressInterval(start: 0x1FFF_0000, end: 0x2000_0000))
        #expect(high.interval == AddressInterval(start: 0x2000_0000, end: 0x2001_0000))
        #expect(lowNotifier !== highNotifier)
        #expect(svm.counts == (2, 2))
    }

    @Test("REMOVE zaps device mappings and bumps the sequence number; the range stays")
    func removeEvent() throws {
        cpu.add(0x4000_0000, 0x4040_0000)
        let svm = space()
        let device = RecordingMapper(1)
        let idle = RecordingMapper(2)
        svm.register(device)
        svm.register(idle)
        let (range, notifier) = try svm.findOrInsertRange(faultAddress: 0x4000_0000, write: true)
        let sequence = notifier.sequence.readBegin()
        svm.notifierLock.withReadLock { _ = range.pages(for: 1).publishLocked([], sequence: sequence, hasDevmem: false, dma: nil, under: svm.notifierLock) }
        let touched = svm.invalidate(AddressInterval(start: 0x4010_0000, end: 0x4010_1000), event: .remove)
        #expect(touched.count == 1 && touched[0] === range)
        #expect(device.zapped.withLock { $0 } == [range.interval])
        #expect(idle.zapped.withLock { $0 }.isEmpty)
        #expect(notifier.sequence.needsRetry(sequence))
        #expect(!range.pages(for: 1).isMapped)
        #expect(range.flags.load() == [.migrateDevmem])
        #expect(svm.collectGarbage() == 0)
        #expect(svm.counts.ranges == 1)
    }

    @Test("A range no device maps: a migration's invalidation zaps nothing and keeps the pages' marks; an UNMAP marks every device's pages")
    func invalidationOfUnmappedPages() throws {
        let (svm, device, range, notifier) = try rangeMappedOnDevice1()
        // Device 1 mapped the range once and was invalidated since; device 2 never mapped it.
        svm.invalidate(range.interval, event: .remove)
        let never = range.pages(for: 2)
        #expect(device.zapped.withLock { $0 } == [range.interval])
        let sequence = notifier.sequence.readBegin()
        svm.invalidateForMigration(range.interval)
        #expect(notifier.sequence.needsRetry(sequence), "the sequence moves even when nothing is mapped")
        #expect(device.zapped.withLock { $0 } == [range.interval], "nothing mapped: no zap")
        #expect(range.pages(for: 1).flags.load() == [] && never.flags.load() == [])
        svm.invalidate(range.interval, event: .unmap)
        #expect(range.pages(for: 1).flags.load() == [.unmapped] && never.flags.load() == [.unmapped])
        #expect(device.zapped.withLock { $0 } == [range.interval])
        #expect(svm.collectGarbage() == 1 && svm.counts == (0, 0))
    }

    @Test("A partial UNMAP ends the whole range; the collector removes it after unmapping it everywhere", arguments: [
        UInt64(0), 1 << 19, 1 << 20,  // unmap at offsets 0, 1/4 and 1/2 of a 2 MiB range
    ])
    func partialUnmap(offset: UInt64) throws {
        let (svm, device, range, _) = try rangeMappedOnDevice1()
        let hole = AddressInterval(start: 0x4000_0000 + offset, end: 0x4000_0000 + offset + 0x1000)
        svm.invalidate(hole, event: .unmap)
        #expect(range.flags.load() == [.migrateDevmem, .unmapped, .partialUnmap])
        #expect(range.pages(for: 1).flags.load() == [.unmapped])
        #expect(device.zapped.withLock { $0 } == [range.interval])
        #expect(svm.collectGarbage() == 1)
        #expect(svm.counts == (0, 0))
        #expect(svm.range(containing: 0x4000_0000) == nil)
        // What is still mapped refaults into a new, smaller range beside the hole.
        cpu.mappings.withLock { $0 = [
            CPUMapping(interval: AddressInterval(start: hole.end, end: 0x4040_0000), readable: true, writable: true, shared: false, anonymous: true)
        ] }
        let (refault, _) = try svm.findOrInsertRange(faultAddress: hole.end, write: false)
        #expect(refault.interval.start == hole.end)
        #expect(refault.interval.size < range.interval.size)
    }

    @Test("An unmap covering the whole range is not partial")
    func wholeUnmap() throws {
        cpu.add(0x4000_0000, 0x4040_0000)
        let svm = space()
        let (range, _) = try svm.findOrInsertRange(faultAddress: 0x4000_0000, write: true)
        svm.invalidate(AddressInterval(start: 0x4000_0000, end: 0x4040_0000), event: .unmap)
        #expect(range.flags.load() == [.migrateDevmem, .unmapped])
        // The next fault runs the collector first.
        cpu.mappings.withLock { $0.removeAll() }
        #expect(throws: SVMFaultError.self) { try svm.findOrInsertRange(faultAddress: 0x4000_0000, write: false) }
        #expect(svm.counts == (0, 0))
    }

    @Test("A commit under a sequence number an invalidation changed is refused (seq/retry)")
    func sequenceRetry() throws {
        cpu.add(0x4000_0000, 0x4020_0000)
        let svm = space()
        let (range, notifier) = try svm.findOrInsertRange(faultAddress: 0x4000_0000, write: false)
        var attempts = 0
        try withSequenceRetry(notifier.sequence, timeout: .seconds(5)) { sequence -> Void? in
            attempts += 1
            if attempts == 1 { svm.invalidate(range.interval, event: .migration) }  // races with us
            return svm.notifierLock.withReadLock {
                guard !notifier.sequence.needsRetry(sequence) else { return nil }
                range.pages(for: 1).publishLocked([], sequence: sequence, hasDevmem: false, dma: nil, under: svm.notifierLock)
                return ()
            }
        }
        #expect(attempts == 2)
        #expect(range.pages(for: 1).addresses(validFor: notifier.sequence.readBegin()) == [])
    }
}
