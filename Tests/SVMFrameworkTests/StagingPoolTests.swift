import Glibc
import Testing

@testable import SVMFramework

/// The staging pool hands pages of one migration to the next instead of dropping them.
@Suite("Staging pool") struct StagingPoolTests {
    let cpu = ProcessAddressSpace()
    let size = StagingPool.slotSize

    func interval(_ slot: StagingPool.Slot, _ bytes: UInt64) -> AddressInterval {
        AddressInterval(start: slot.address, end: slot.address + bytes)
    }

    @Test("A copy gets the slot whose pages a move left; a move gets an empty one, dropping pages only when it must")
    func pagesAreReused() throws {
        let pool = StagingPool()
        var filled = try pool.takeEmpty(size)
        #expect(cpu.missingRuns(interval(filled, size)) == [interval(filled, size)])
        // A migration leaves pages in the slot (here written by the CPU).
        memset(pointer(filled.address)!, 7, Int(size))
        filled.mayHold(size)
        pool.recycle(filled)

        // A copy prefers it: its pages are present, the copy will not fault.
        var copy = try pool.takeForCopy()
        #expect(copy.address == filled.address && copy.extent == size)
        #expect(cpu.pagesPresent(interval(copy, size)))
        pool.recycle(copy)

        // A move needs holes: an empty slot when there is one, without dropping anything...
        let empty = try pool.takeEmpty(size)
        #expect(empty.address != filled.address && empty.extent == 0)
        // ...and the filled one, dropped, when it is the only one left.
        var others: [StagingPool.Slot] = []
        while let slot = try? pool.takeEmpty(size), slot.address != filled.address { others.append(slot) }
        #expect(cpu.missingRuns(interval(filled, size)) == [interval(filled, size)])
        for slot in others { pool.recycle(slot) }
        pool.recycle(empty)

        // Pages that all left (moved into place) leave an empty slot.
        copy = try pool.takeForCopy()
        copy.mayHold(64 << 10)
        copy.vacated(64 << 10)
        #expect(copy.extent == 0)
        copy.mayHold(size)
        copy.vacated(64 << 10)
        #expect(copy.extent == size, "pages beyond the vacated bytes may remain")
    }
}
