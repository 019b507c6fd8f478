import Glibc
import SVMTestSupport
import Synchronization
import Testing

@testable import SVMFramework

/// `madvise(MADV_DONTNEED)` is the one change the kernel makes after its event: the caller
/// drops the pages when it runs again. The handler must not call a discard handled while
/// the pages are still there.
@Suite("Discards") struct DiscardTests {
    @Test("A discard handled while the kernel refuses moves still ends with the pages out")
    func discardWaitsUntilThePagesAreOut() throws {
        let f = try SimDeviceFixture(policy: .systemMemory)
        defer { f.shutdown() }
        let mirror = try #require(f.context.mirror)
        // Two ranges the mirror watches, in system memory: the one discarded and another.
        let buffer = MappedBuffer(size: 2 << 20)
        let other = MappedBuffer(size: 2 << 20)
        memset(buffer.base, 0x5a, buffer.size)
        memset(other.base, 0x5a, other.size)
        _ = try f.deviceRead(buffer.address, 64)
        _ = try f.deviceRead(other.address, 64)

        // The window of a busy machine: another thread's discard is queued and not read
        // (the handler is kept from reading by holding the log's read side), so the kernel
        // refuses every move with EAGAIN, as it does until a discarding thread runs again.
        let reading = Atomic<Int>(0)
        let blocker = TestThread {
            mirror.log.withChanges(since: 0, affecting: AddressInterval(start: buffer.address, end: buffer.address + UInt64(buffer.size))) { _ in
                reading.store(1, ordering: .releasing)
                while reading.load(ordering: .acquiring) == 1 { usleep(1000) }
            }
        }
        while reading.load(ordering: .acquiring) == 0 { usleep(100) }
        let discarder = TestThread { madvise(other.base, 4096, MADV_DONTNEED) }
        #expect(try mirror.faults.waitUntilReadable(timeout: .seconds(30)), "the other discard is queued")

        // Handling our discard now must not return with the pages in place. The handler may
        // read events again in a moment.
        let release = TestThread {
            usleep(200_000)
            reading.store(2, ordering: .releasing)
        }
        let interval = AddressInterval(start: buffer.address, end: buffer.address + (64 << 10))
        f.context.addressSpaceChanged(.remove(start: UInt(interval.start), end: UInt(interval.end)))
        #expect(PageMap().populatedRuns(interval) == [], "every discarded page is out of place")

        release.join()
        blocker.join()
        discarder.join()
        #expect(buffer.bytes[0] == 0 && buffer.bytes[(64 << 10) - 1] == 0)
        #expect(buffer.bytes[64 << 10] == 0x5a, "bytes after the discard stay")
    }

    /// A migration putting data back follows only the logged changes that can apply to its
    /// range: the same destinations for every page of it as with the whole log, in logs of
    /// random discards and remaps that cross the range, carry it away and back.
    @Test(arguments: 1...20 as ClosedRange<UInt64>)
    func relevantChangesGiveTheSameDestinations(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        let page: UInt64 = 4096
        let range = AddressInterval(start: 64 * page, end: 80 * page)
        // Addresses in 256 pages, so that changes often miss the range and remaps return.
        func interval(maxPages: UInt64) -> AddressInterval {
            let start = UInt64.random(in: 0..<256, using: &random) * page
            return AddressInterval(start: start, end: start + UInt64.random(in: 1...maxPages, using: &random) * page)
        }
        let log: [AddressSpaceChange] = (0..<200).map { _ in
            if Bool.random(using: &random) { return .discarded(interval(maxPages: 2)) }
            let from = interval(maxPages: 24)
            return .remapped(from: from.start, to: UInt64.random(in: 0..<256, using: &random) * page, length: from.size)
        }
        let relevant = log.relevant(to: range)
        #expect(relevant.count < log.count)
        for address in stride(from: range.start, to: range.end, by: Int(page)) {
            #expect(relevant.destination(of: address) == log.destination(of: address), "page at \(address)")
        }
    }
}
