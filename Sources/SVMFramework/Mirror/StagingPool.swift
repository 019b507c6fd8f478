import Glibc
import SVMPluginKit
import Synchronization

/// Private anonymous buffers that data passes through on its way between CPU pages and
/// device memory, one per migration in flight.
///
/// A migration to device memory *moves* the CPU pages of a range into an empty slot with
/// `UFFDIO_MOVE` (the range becomes holes in one step, which is what the kernel's migration
/// entries achieve) and copies the slot into device memory. A migration back copies device
/// memory into a slot and moves those pages into place (no second copy).
///
/// ## Pages are reused, not dropped
/// The pages a migration to device memory leaves in its slot are exactly what the next
/// migration back needs to copy into: present, writable pages. So a slot keeps them, and a
/// copy prefers a slot that has pages (no page faults); a move prefers a slot whose pages
/// all moved out (no `MADV_DONTNEED`). In a steady back-and-forth neither faults nor drops
/// happen. A slot knows its ``Slot/extent``: pages may exist only below it.
///
/// `UFFDIO_MOVE` wants the destination registered with the same userfaultfd, so a slot is
/// registered only for the move that fills it, and unregistered before its pages are
/// dropped: dropping them then raises no event.
///
/// Slots are 2 MiB (the largest chunk), aligned to 2 MiB, read-write like the memory they
/// serve (the move requires equal protections).
final class StagingPool: Sendable {
    static let slotSize: UInt64 = 2 << 20
    /// Slots reserved per mapping: enough for the migrations two cores run at once, and a
    /// few device threads besides; more are mapped when they run out.
    private static let slotsPerBlock = 8

    /// One slot, taken by one migration at a time.
    struct Slot {
        let address: UInt64
        /// Pages may be present only in `[address, address + extent)`.
        var extent: UInt64 = 0

        /// Records that pages may now be present in the first `bytes`.
        mutating func mayHold(_ bytes: UInt64) { extent = max(extent, bytes) }

        /// Records that the first `bytes` hold no page any more.
        mutating func vacated(_ bytes: UInt64) { if bytes >= extent { extent = 0 } }
    }

    /// Free slots; protected by the mutex, held only to push or pop.
    private let free = Mutex<[Slot]>([])

    /// A slot with no page in its first `length` bytes, for a move to fill.
    func takeEmpty(_ length: UInt64) throws(StagingPoolError) -> Slot {
        var slot = try take { slots in slots.lastIndex { $0.extent == 0 } ?? slots.indices.last }
        if slot.extent > 0 {
            // Not registered now: the drop raises no event.
            madvise(pointer(slot.address), Int(slot.extent), MADV_DONTNEED)
            slot.extent = 0
        }
        return slot
    }

    /// A slot to copy into: one with the most pages present, so the copy faults least.
    func takeForCopy() throws(StagingPoolError) -> Slot {
        try take { slots in slots.indices.max { slots[$0].extent < slots[$1].extent } }
    }

    /// Gives the slot back; ``Slot/extent`` must say where pages may be.
    func recycle(_ slot: Slot) {
        free.withLock { $0.append(slot) }
    }

    private func take(choosing choose: (inout [Slot]) -> Int?) throws(StagingPoolError) -> Slot {
        let chosen = free.withLock { slots -> Slot? in choose(&slots).map { slots.remove(at: $0) } }
        if let chosen { return chosen }
        let slots = try Self.mapBlock()
        free.withLock { $0.append(contentsOf: slots.dropFirst()) }
        return slots[0]
    }

    /// Maps `slotsPerBlock` aligned slots. Never unmapped: the pool lives as long as its
    /// mirror, and slots are reused.
    private static func mapBlock() throws(StagingPoolError) -> [Slot] {
        let size = Int(slotSize) * slotsPerBlock
        guard let block = mapAnonymousAligned(size: size, alignment: Int(slotSize), flags: MAP_PRIVATE | MAP_NORESERVE) else {
            throw StagingPoolError(errno: errno)
        }
        let aligned = UInt64(UInt(bitPattern: block))
        // No huge pages: a 4 KiB migration must not make the kernel fault a whole 2 MiB page.
        madvise(block, size, MADV_NOHUGEPAGE)
        // The handler thread copies into slots: they must never share a VMA with the
        // program's memory, which an SVM range could cover.
        keepApartFromProgramMemory(block, size: size)
        return (0..<slotsPerBlock).map { Slot(address: aligned + UInt64($0) * slotSize) }
    }
}

/// The staging memory could not be mapped.
struct StagingPoolError: Error, CustomStringConvertible {
    let errno: Int32
    var description: String { "cannot map staging memory for migration: \(String(cString: strerror(errno)))" }
}
