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
        // No background preparation: this test decides every slot's state itself.
        let pool = StagingPool(readySlots: 0)
        var filled = try pool.takeEmpty(size)
        #expect(cpu.missingRuns(interval(filled, size)) == [interval(filled, size)])
        // A migration leaves pages in the slot (here written by the CPU).
        memset(pointer(filled.address)!, 7, Int(size))
        filled.mayHold(size)
        pool.recycle(filled)

        // A copy prefers it: its pages are present, the copy will not fault.
        var copy = try pool.takeForCopy(size)
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
        copy = try pool.takeForCopy(size)
        copy.mayHold(64 << 10)
        copy.vacated(64 << 10)
        #expect(copy.extent == 0)
        copy.mayHold(size)
        copy.vacated(64 << 10)
        #expect(copy.extent == size, "pages beyond the vacated bytes may remain")
    }

    @Test("After a large drop or fault-in on the fault path, the worker keeps empty and filled slots ready")
    func backgroundPreparation() throws {
        let pool = StagingPool(readySlots: 2)
        defer { pool.stop() }
        // A run of moves leaves every slot of the block holding pages.
        var taken: [StagingPool.Slot] = []
        for _ in 0..<8 { taken.append(try pool.takeEmpty(size)) }
        for var slot in taken {
            memset(pointer(slot.address)!, 9, Int(size))
            slot.mayHold(size)
            pool.recycle(slot)
        }
        // The next move has to drop 2 MiB itself: from then on the worker keeps two empty.
        pool.recycle(try pool.takeEmpty(size))
        #expect(waitUntil { pool.freeSlots.filter { $0.extent == 0 }.count >= 2 }, "one dropped inline, one by the worker")
        #expect(pool.freeSlots.filter { $0.extent == size }.count >= 2, "filled slots are kept too")
        expectExtentsTellTheTruth(pool)

        // A run of copies that move their pages out leaves every slot empty; the next copy
        // faults its pages in itself, and from then on the worker keeps two filled.
        taken = []
        while let slot = pool.freeSlots.isEmpty ? nil : try? pool.takeForCopy(size) { taken.append(slot) }
        for var slot in taken {
            madvise(pointer(slot.address)!, Int(size), MADV_DONTNEED)
            slot.vacated(size)
            pool.recycle(slot)
        }
        pool.recycle(try pool.takeForCopy(size))
        #expect(waitUntil { pool.freeSlots.filter { $0.extent == size }.count >= 2 }, "filled by the worker")
        #expect(pool.freeSlots.filter { $0.extent == 0 }.count >= 2, "empty slots are kept too")
        expectExtentsTellTheTruth(pool)
    }

    @Test("Small migrations never wake the worker: their drops are done inline")
    func smallMigrationsStayInline() throws {
        let pool = StagingPool(readySlots: 2)
        defer { pool.stop() }
        var taken: [StagingPool.Slot] = []
        for _ in 0..<8 { taken.append(try pool.takeEmpty(4096)) }
        for var slot in taken {
            pointer(slot.address)!.storeBytes(of: 1, as: UInt8.self)
            slot.mayHold(4096)
            pool.recycle(slot)
        }
        // Every slot holds a page: the move drops one inline (4 KiB), asking nothing more.
        let slot = try pool.takeEmpty(4096)
        #expect(slot.extent == 0)
        usleep(100_000)
        #expect(pool.freeSlots.count == 7 && pool.freeSlots.allSatisfy { $0.extent == 4096 },
                "no slot was prepared in the background")
        pool.recycle(slot)
    }

    /// Empty free slots have no page; filled ones have every page.
    func expectExtentsTellTheTruth(_ pool: StagingPool) {
        for slot in pool.freeSlots where slot.extent == 0 {
            #expect(cpu.missingRuns(interval(slot, size)) == [interval(slot, size)])
        }
        for slot in pool.freeSlots where slot.extent == size {
            #expect(cpu.pagesPresent(interval(slot, size)))
        }
    }

    /// Polls `condition` until it holds, for at most 30 s (the worker runs on a shared,
    /// noisy machine; this bounds a hang, it does not time anything).
    func waitUntil(_ condition: () -> Bool) -> Bool {
        for _ in 0..<30_000 {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }
}
