import Testing

@testable import SVMFramework

/// The mirror's log of address-space changes: a migration that left at some position must
/// still find every change after it, however many more the log took meanwhile.
@Suite("Address-space log") struct AddressSpaceLogTests {
    /// Appends `count` discards of distinct pages from `first` on, each handled at once.
    private func discard(_ log: AddressSpaceLog, count: Int, from first: Int) {
        for index in first..<first + count {
            let start = UInt64(index) * 4096
            log.append(.discarded(AddressInterval(start: start, end: start + 4096)))
            log.markHandled()
        }
    }

    @Test("Changes after a held position are kept past the trim threshold; once every holder arrived they may go")
    func heldPositionsKeepTheirChanges() {
        let log = AddressSpaceLog()
        discard(log, count: 10, from: 0)
        // Two migrations leave at the same position, a third later.
        let early = log.depart()
        #expect(log.depart() == early)
        discard(log, count: 1500, from: 10)  // past the 1,024 that make the log trim
        let late = log.depart()
        discard(log, count: 1500, from: 1510)
        #expect(log.changes(since: early).count == 3000, "nothing after a held position is dropped")
        #expect(log.changes(since: late).count == 1500)
        // One of the two early holders arrives: the position is still held.
        log.arrive(early)
        discard(log, count: 1100, from: 3010)
        #expect(log.changes(since: early).count == 4100)
        // The last early holder arrives: the log may drop what only it needed, not what
        // the later one needs.
        log.arrive(early)
        discard(log, count: 1100, from: 4110)
        #expect(log.changes(since: late).count == 3700)
        #expect(log.changes(since: early).count < 4100 + 1100, "the early changes were trimmed")
        log.arrive(late)
        // An unknown position arriving changes nothing.
        log.arrive(123_456)
    }
}
