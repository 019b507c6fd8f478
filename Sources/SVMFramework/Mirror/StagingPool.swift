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
/// ## Dropping and faulting in happen in the background
/// A run of moves (a device faulting in range after range) would find no empty slot and
/// have to drop 512 pages first; a run of copies (the CPU faulting them back) would fault
/// 512 pages into each slot. A background worker keeps ``readySlots`` free slots of each
/// kind ready instead, so neither waits on the fault path: it drops the pages of a slot when
/// too few are empty, and faults pages into an empty one when too few are filled (the
/// kernel does the same work a first touch would, on the other core). With 0 it does
/// nothing, and a move that finds no empty slot drops one itself.
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
    /// How many empty and how many filled free slots the background worker keeps ready.
    let readySlots: Int
    private let worker = BackgroundWorker()

    init(readySlots: Int = 2) {
        self.readySlots = readySlots
    }

    /// Stops the background worker (after the slot it is preparing, if any).
    func stop() {
        worker.stop()
    }

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

    /// The free slots now (for tests).
    var freeSlots: [Slot] { free.withLock { $0 } }

    /// A slot to copy into: one with the most pages present, so the copy faults least.
    func takeForCopy() throws(StagingPoolError) -> Slot {
        try take { slots in slots.indices.max { slots[$0].extent < slots[$1].extent } }
    }

    /// Gives the slot back; ``Slot/extent`` must say where pages may be.
    func recycle(_ slot: Slot) {
        let unbalanced = free.withLock { slots in
            slots.append(slot)
            return preparation(of: slots) != nil
        }
        if unbalanced { wakeWorker() }
    }

    private func take(choosing choose: (inout [Slot]) -> Int?) throws(StagingPoolError) -> Slot {
        let (chosen, unbalanced) = free.withLock { slots -> (Slot?, Bool) in
            let chosen = choose(&slots).map { slots.remove(at: $0) }
            return (chosen, preparation(of: slots) != nil)
        }
        if unbalanced { wakeWorker() }
        if let chosen { return chosen }
        let slots = try Self.mapBlock()
        free.withLock { $0.append(contentsOf: slots.dropFirst()) }
        return slots[0]
    }

    // MARK: background preparation

    /// What the worker should do to one free slot.
    private enum Preparation {
        case drop(index: Int)
        case fill(index: Int)
    }

    /// The next slot to prepare, or `nil` when `slots` are balanced: at least ``readySlots``
    /// empty and as many filled, as far as there are slots to spare.
    private func preparation(of slots: [Slot]) -> Preparation? {
        guard readySlots > 0 else { return nil }
        let empty = slots.indices.filter { slots[$0].extent == 0 }
        let holding = slots.indices.filter { slots[$0].extent > 0 }
        let filled = holding.filter { slots[$0].extent == Self.slotSize }
        if empty.count < readySlots, holding.count > readySlots,
            let cheapest = holding.min(by: { slots[$0].extent < slots[$1].extent })
        {
            return .drop(index: cheapest)
        }
        if filled.count < readySlots, empty.count > readySlots, let first = empty.first {
            return .fill(index: first)
        }
        return nil
    }

    private func wakeWorker() {
        worker.wake { [weak self] in self?.prepareSlots() }
    }

    /// On the worker: prepares slots one at a time until the free ones are balanced. A slot
    /// being prepared is out of the free list, so no migration uses it meanwhile.
    private func prepareSlots() {
        while let (slot, fill) = free.withLock({ slots -> (Slot, Bool)? in
            switch preparation(of: slots) {
            case .drop(let index): (slots.remove(at: index), false)
            case .fill(let index): (slots.remove(at: index), true)
            case nil: nil
            }
        }) {
            var prepared = slot
            if fill {
                Self.faultIn(slot)
                prepared.mayHold(Self.slotSize)
            } else {
                // Not registered now: the drop raises no event.
                madvise(pointer(slot.address), Int(slot.extent), MADV_DONTNEED)
                prepared.extent = 0
            }
            free.withLock { $0.append(prepared) }
        }
    }

    /// Faults writable pages into the whole slot, as a first touch would.
    private static func faultIn(_ slot: Slot) {
        guard madvise(pointer(slot.address), Int(slotSize), MADV_POPULATE_WRITE) != 0 else { return }
        // Before Linux 5.14: touch each page (the slot is ours and registered with nothing).
        let bytes = pointer(slot.address)!.assumingMemoryBound(to: UInt8.self)
        for page in stride(from: 0, to: Int(slotSize), by: 4096) { bytes[page] = 0 }
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
