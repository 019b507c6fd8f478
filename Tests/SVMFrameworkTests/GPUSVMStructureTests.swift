import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

@testable import SVMFramework

@Suite("SVM configuration")
struct SVMConfigurationTests {
    @Test("Defaults: 512 MiB notifiers, 2M/64K/4K chunks, 64 KiB threshold")
    func defaults() {
        let standard = SVMConfiguration.standard
        #expect(standard.notifierSize == 512 << 20)
        #expect(standard.chunkSizes == [2 << 20, 64 << 10, 4 << 10])
        #expect(standard.checkPagesThreshold == 64 << 10)
    }

    @Test("Chunk sizes must be powers of two, descending, ending at 4 KiB", arguments: [
        [UInt64](), [2 << 20, 64 << 10], [64 << 10, 2 << 20, 4096], [3 << 20, 4096], [4096, 4096], [1 << 30, 4096],
    ])
    func badChunkSizes(_ sizes: [UInt64]) {
        #expect(throws: SVMConfigurationError.invalidChunkSizes(sizes)) {
            try SVMConfiguration(chunkSizes: sizes)
        }
    }

    @Test func badNotifierSize() {
        #expect(throws: SVMConfigurationError.invalidNotifierSize(3 << 20)) { try SVMConfiguration(notifierSize: 3 << 20) }
    }
}

@Suite("Interval tree")
struct IntervalTreeTests {
    @Test("Find, overlap and insert refuse overlaps")
    func basics() {
        var tree = IntervalTree<String>()
        let inserted = [
            tree.insert(AddressInterval(start: 0x2000, end: 0x3000), "b"),
            tree.insert(AddressInterval(start: 0x0000, end: 0x1000), "a"),
            tree.insert(AddressInterval(start: 0x2fff, end: 0x4000), "overlap"),
            tree.insert(AddressInterval(start: 0x3000, end: 0x4000), "c"),
        ]
        #expect(inserted == [true, true, false, true])
        #expect(tree.find(containing: 0x2abc)?.value == "b")
        #expect(tree.find(containing: 0x1000) == nil)
        #expect(tree.overlapping(AddressInterval(start: 0x0fff, end: 0x3001)).map(\.value) == ["a", "b", "c"])
        #expect(!tree.hasOverlap(AddressInterval(start: 0x1000, end: 0x2000)))
        let removed = [
            tree.remove(AddressInterval(start: 0x2000, end: 0x3000)),
            tree.remove(AddressInterval(start: 0x2000, end: 0x2800)),
        ]
        #expect(removed == ["b", nil])
        #expect(tree.all.map(\.value) == ["a", "c"])
    }

    @Test("Random inserts and removes agree with a page-by-page model", arguments: 0..<20, [4, IntervalTree<Int>.defaultBlockCapacity])
    func randomized(seed: UInt64, blockCapacity: Int) {
        var generator = SeededRandom(seed: seed)
        var tree = IntervalTree<Int>(blockCapacity: blockCapacity)
        var owner: [UInt64: Int] = [:]  // page -> id
        var live: [Int: AddressInterval] = [:]
        for id in 0..<400 {
            if !live.isEmpty, generator.next() % 3 == 0 {
                let victim = live.keys.sorted()[Int(generator.next() % UInt64(live.count))]
                let interval = live.removeValue(forKey: victim)!
                let removed = tree.remove(interval)
                #expect(removed == victim)
                for page in stride(from: interval.start, to: interval.end, by: 4096) { owner[page] = nil }
                continue
            }
            let start = (generator.next() % 256) * 4096
            let interval = AddressInterval(start: start, end: start + (1 + generator.next() % 8) * 4096)
            let free = stride(from: interval.start, to: interval.end, by: 4096).allSatisfy { owner[$0] == nil }
            let inserted = tree.insert(interval, id)
            #expect(inserted == free)
            if free {
                live[id] = interval
                for page in stride(from: interval.start, to: interval.end, by: 4096) { owner[page] = id }
            }
            let probe = (generator.next() % 264) * 4096
            #expect(tree.find(containing: probe + 5)?.value == owner[probe])
            // A query spanning several blocks of a small tree finds what the model holds.
            let queryStart = (generator.next() % 256) * 4096
            let query = AddressInterval(start: queryStart + 1, end: queryStart + (1 + generator.next() % 64) * 4096)
            let expected = live.filter { $0.value.overlaps(query) }.sorted { $0.value.start < $1.value.start }.map(\.key)
            #expect(tree.overlapping(query).map(\.value) == expected)
            #expect(tree.hasOverlap(query) == !expected.isEmpty)
        }
        #expect(tree.count == live.count)
        #expect(tree.all.map(\.value) == live.sorted { $0.value.start < $1.value.start }.map(\.key))
        #expect(tree.largestBlock <= blockCapacity)
    }

    @Test("Blocks split when full and merge when sparse, so no insert moves more than a block")
    func layout() {
        var tree = IntervalTree<Int>(blockCapacity: 8)
        let intervals = (0..<1000).map { AddressInterval(start: UInt64($0) * 4096, end: UInt64($0 + 1) * 4096) }
        // Inserted in reverse: every insert lands at the front, the worst case of one array.
        for (id, interval) in intervals.enumerated().reversed() {
            let inserted = tree.insert(interval, id)
            #expect(inserted)
        }
        #expect(tree.count == 1000)
        #expect(tree.largestBlock <= 8)
        #expect(tree.blockCount >= 1000 / 8)
        for (id, interval) in intervals.enumerated() where id % 10 != 0 {
            let removed = tree.remove(interval)
            #expect(removed == id)
        }
        #expect(tree.count == 100)
        // 100 intervals left: merged back to at most four times the blocks they need.
        #expect(tree.blockCount <= 4 * 100 / 8 + 1)
        #expect(tree.all.map(\.value) == Array(stride(from: 0, to: 1000, by: 10)))
        #expect(tree.find(containing: 990 * 4096 + 1)?.value == 990)
        #expect(tree.find(containing: 991 * 4096) == nil)
    }
}

@Suite("Range chunk selection")
struct RangeChunkSelectorTests {
    let notifier = AddressInterval(start: 0, end: 512 << 20)

    func select(
        _ address: UInt64, mapping: AddressInterval, existing: [AddressInterval] = [],
        present: (AddressInterval) -> Bool = { _ in true }
    ) -> AddressInterval? {
        RangeChunkSelector.select(
            faultAddress: address, mapping: mapping, notifier: notifier, configuration: .standard,
            overlapsExisting: { candidate in existing.contains { $0.overlaps(candidate) } }, pagesPresent: present)
    }

    @Test("The largest aligned chunk inside the mapping")
    func largest() {
        let mapping = AddressInterval(start: 4 << 20, end: 16 << 20)
        #expect(select((5 << 20) + 123, mapping: mapping) == AddressInterval(start: 4 << 20, end: 6 << 20))
    }

    @Test("A mapping smaller than 2 MiB gives 64 KiB, then 4 KiB at its unaligned edge")
    func smallerMapping() {
        let mapping = AddressInterval(start: 0x10_0000 + 0x3000, end: 0x10_0000 + 0x30000)
        #expect(select(0x10_0000 + 0x1_2345, mapping: mapping) == AddressInterval(start: 0x11_0000, end: 0x12_0000))
        #expect(select(0x10_0000 + 0x4000, mapping: mapping) == AddressInterval(start: 0x10_4000, end: 0x10_5000))
    }

    @Test("An existing range in the way makes the chunk smaller")
    func overlap() {
        let mapping = AddressInterval(start: 0, end: 4 << 20)
        let existing = [AddressInterval(start: 0x1000, end: 0x2000)]
        #expect(select(0x10_0000, mapping: mapping, existing: existing) == AddressInterval(start: 0x10_0000, end: 0x11_0000))
        #expect(select(0x3000, mapping: mapping, existing: existing) == AddressInterval(start: 0x3000, end: 0x4000))
        #expect(select(0x1800, mapping: mapping, existing: existing) == nil)
    }

    @Test("Below the threshold, chunks with absent CPU pages fall back; 4 KiB is never checked")
    func checkPagesThreshold() {
        let mapping = AddressInterval(start: 0x10_0000, end: 0x10_0000 + 0x10000)
        #expect(select(0x10_0000, mapping: mapping, present: { _ in false }) == AddressInterval(start: 0x10_0000, end: 0x10_1000))
        #expect(select(0x10_0000, mapping: mapping, present: { _ in true }) == AddressInterval(start: 0x10_0000, end: 0x11_0000))
        // 2 MiB is above the threshold: not checked.
        let big = AddressInterval(start: 0, end: 2 << 20)
        #expect(select(0x5000, mapping: big, present: { _ in false }) == big)
    }

    @Test("Chunks never cross the notifier; outside the mapping there is no range")
    func bounds() {
        let mapping = AddressInterval(start: 0, end: 1 << 30)
        #expect(select((512 << 20) - 1, mapping: mapping) == AddressInterval(start: (510 << 20), end: 512 << 20))
        #expect(select(2 << 30, mapping: mapping) == nil)
        #expect(Notifier.interval(containing: (700 << 20), size: 512 << 20) == AddressInterval(start: 512 << 20, end: 1 << 30))
    }
}

@Suite("Sequence numbers and device pages")
struct SequenceRetryTests {
    @Test("The seq/retry loop retries after an invalidation and commits on a quiet seq")
    func retries() throws {
        let sequence = NotifierSequence()
        var attempts = 0
        let result = try withSequenceRetry(sequence, timeout: .seconds(5)) { seq -> Int? in
            attempts += 1
            if attempts < 3 { sequence.invalidate() }  // an invalidation races with us
            return sequence.needsRetry(seq) ? nil : attempts
        }
        #expect(result == 3)
    }

    @Test("It gives up with a clear error when invalidations never stop")
    func timeout() {
        let sequence = NotifierSequence()
        #expect(throws: SequenceRetryTimeout.self) {
            try withSequenceRetry(sequence, timeout: .milliseconds(20)) { seq -> Int? in
                sequence.invalidate()
                return sequence.needsRetry(seq) ? nil : 0
            }
        }
    }

    @Test("Device pages are valid only for the sequence they were collected under")
    func devicePages() {
        let range = SVMRange(interval: AddressInterval(start: 0, end: 0x2000))
        let pages = range.pages(for: 1)
        #expect(range.pages(for: 1) === pages)
        #expect(!range.isMappedByAnyDevice)
        let addresses = [PagemapAddress(address: 0x1000, linkProtocol: .localVRAM, order: 1)]
        let lock = NotifierLock()
        lock.withReadLock { _ = pages.publishLocked(addresses, sequence: 7, hasDevmem: true, dma: nil, under: lock) }
        #expect(pages.flags.load() == [.hasDMAMapping, .hasDevmemPages])
        #expect(pages.addresses(validFor: 7) == addresses)
        #expect(pages.addresses(validFor: 8) == nil)
        #expect(range.isMappedByAnyDevice)
        lock.withWriteLock { _ = pages.invalidateLocked(unmapped: true, under: lock) }
        #expect(pages.flags.load() == [.unmapped])
        #expect(pages.addresses(validFor: 7) == nil)
        #expect(!range.isMappedByAnyDevice)
    }

    #if DEBUG
    @Test("A Locked helper called without the notifier lock stops a debug build")
    func lockedHelperWithoutTheLock() async {
        await #expect(processExitsWith: .failure) {
            let lock = NotifierLock()
            DevicePages(deviceID: 1).invalidateLocked(under: lock)
        }
    }

    @Test("A Locked helper that needs the write lock stops a debug build under the read lock")
    func lockedHelperUnderTheWrongMode() async {
        await #expect(processExitsWith: .failure) {
            let lock = NotifierLock()
            lock.withReadLock { _ = DevicePages(deviceID: 1).invalidateLocked(under: lock) }
        }
    }

    @Test("The Locked helpers run with the lock held as they need")
    func lockedHelpersWithTheLock() {
        let lock = NotifierLock()
        let pages = DevicePages(deviceID: 1)
        lock.withReadLock { _ = pages.publishLocked([], sequence: 1, hasDevmem: false, dma: nil, under: lock) }
        lock.withWriteLock {
            pages.publishLocked([], sequence: 2, hasDevmem: false, dma: nil, under: lock)  // write satisfies read
            pages.invalidateLocked(under: lock)
        }
        #expect(!pages.isMapped)
    }
    #endif

    final class LockProbe: Sendable {
        let lock = NotifierLock()
        let writes = Locked(0)
        let readersSeenByWriters = Locked(0)
        let readers = Atomic<Int>(0)
    }

    @Test("The notifier lock excludes writers from readers")
    func notifierLock() async {
        let probe = LockProbe()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    for _ in 0..<200 {
                        if index % 2 == 0 {
                            probe.lock.withWriteLock {
                                let readers = probe.readers.load(ordering: .acquiring)
                                probe.readersSeenByWriters.withLock { $0 = max($0, readers) }
                                probe.writes.withLock { $0 += 1 }
                            }
                        } else {
                            probe.lock.withReadLock {
                                probe.readers.add(1, ordering: .acquiringAndReleasing)
                                probe.readers.subtract(1, ordering: .acquiringAndReleasing)
                            }
                        }
                    }
                }
            }
        }
        #expect(probe.writes.withLock { $0 } == 800)
        #expect(probe.readersSeenByWriters.withLock { $0 } == 0)
    }
}
