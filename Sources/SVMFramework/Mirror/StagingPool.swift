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
/// ## Large drops and fault-ins happen in the background
/// A run of large moves (a device faulting in 2 MiB range after range) would find no empty
/// slot and drop 512 pages first; a run of large copies (the CPU faulting them back) would
/// fault 512 pages into each slot. Once the fault path has had to do either for at least
/// ``backgroundBytes``, a background worker keeps ``readySlots`` free slots of that kind
/// ready: it drops the pages of a slot when too few are empty, and faults pages into an
/// empty one when too few are filled (the kernel does the work a first touch would, on the
/// other core). Small migrations never wake it: dropping or faulting in a few pages inline
/// costs less than waking a thread. With `readySlots` 0 it does nothing.
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

        /// Drops every page. Only while the slot is not registered: the drop then raises no
        /// event.
        mutating func drop() {
            madvise(pointer(address), Int(extent), MADV_DONTNEED)
            extent = 0
        }
    }

    /// Below this, a drop or a fault-in on the fault path is cheaper than waking the worker.
    static let backgroundBytes: UInt64 = 512 << 10

    /// The free slots, and what the fault path has shown it needs ready.
    private struct Shelf {
        var slots: [Slot] = []
        /// A move had to drop a large slot: keep empty slots ready.
        var wantsEmpty = false
        /// A large copy found no slot holding its pages: keep filled slots ready.
        var wantsFilled = false
    }

    /// Protected by the mutex, held only to push or pop.
    private let shelf = Locked(Shelf())
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

    /// The free slots now (for tests).
    var freeSlots: [Slot] { shelf.withLock { $0.slots } }

    /// A slot with no page in its first `length` bytes, for a move to fill.
    func takeEmpty(_ length: UInt64) throws(StagingPoolError) -> Slot {
        var slot = try take { shelf in shelf.slots.lastIndex { $0.extent == 0 } ?? shelf.slots.indices.last }
        if slot.extent > 0 {
            if slot.extent >= Self.backgroundBytes { demand { $0.wantsEmpty = true } }
            slot.drop()
        }
        return slot
    }

    /// A slot to copy `length` bytes into: one with the most pages present, so the copy
    /// faults least.
    func takeForCopy(_ length: UInt64) throws(StagingPoolError) -> Slot {
        let slot = try take { shelf in shelf.slots.indices.max { shelf.slots[$0].extent < shelf.slots[$1].extent } }
        if slot.extent < length && length >= Self.backgroundBytes { demand { $0.wantsFilled = true } }
        return slot
    }

    /// Gives the slot back; ``Slot/extent`` must say where pages may be.
    func recycle(_ slot: Slot) {
        let unbalanced = shelf.withLock { shelf in
            shelf.slots.append(slot)
            return preparation(of: shelf) != nil
        }
        if unbalanced { wakeWorker() }
    }

    private func take(choosing choose: (Shelf) -> Int?) throws(StagingPoolError) -> Slot {
        let (chosen, unbalanced) = shelf.withLock { shelf -> (Slot?, Bool) in
            let chosen = choose(shelf).map { shelf.slots.remove(at: $0) }
            return (chosen, preparation(of: shelf) != nil)
        }
        if unbalanced { wakeWorker() }
        if let chosen { return chosen }
        let slots = try Self.mapBlock()
        shelf.withLock { $0.slots.append(contentsOf: slots.dropFirst()) }
        return slots[0]
    }

    /// Records what the fault path needed, and lets the worker prepare it.
    private func demand(_ record: (inout Shelf) -> Void) {
        let unbalanced = shelf.withLock { shelf in
            record(&shelf)
            return preparation(of: shelf) != nil
        }
        if unbalanced { wakeWorker() }
    }

    // MARK: background preparation

    /// What the worker should do to one free slot.
    private enum Preparation {
        case drop(index: Int)
        case fill(index: Int)
    }

    /// The next slot to prepare, or `nil` when the free slots are balanced for what the
    /// fault path needs: at least ``readySlots`` empty and as many filled, as far as there
    /// are slots to spare.
    private func preparation(of shelf: Shelf) -> Preparation? {
        // Every take and recycle asks: answer at once until the fault path has asked for more.
        guard readySlots > 0, shelf.wantsEmpty || shelf.wantsFilled else { return nil }
        let slots = shelf.slots
        let empty = slots.indices.filter { slots[$0].extent == 0 }
        let holding = slots.indices.filter { slots[$0].extent > 0 }
        let filled = holding.filter { slots[$0].extent == Self.slotSize }
        if shelf.wantsEmpty, empty.count < readySlots, holding.count > readySlots,
            let cheapest = holding.min(by: { slots[$0].extent < slots[$1].extent })
        {
            return .drop(index: cheapest)
        }
        if shelf.wantsFilled, filled.count < readySlots, empty.count > readySlots, let first = empty.first {
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
        while let (slot, fill) = shelf.withLock({ shelf -> (Slot, Bool)? in
            switch preparation(of: shelf) {
            case .drop(let index): (shelf.slots.remove(at: index), false)
            case .fill(let index): (shelf.slots.remove(at: index), true)
            case nil: nil
            }
        }) {
            var prepared = slot
            if fill {
                Self.faultIn(slot)
                prepared.mayHold(Self.slotSize)
            } else {
                prepared.drop()
            }
            shelf.withLock { $0.slots.append(prepared) }
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
        // program's memory, which an SVM range could cover, nor be covered by a range made
        // on a device fault through a stray pointer. Never withdrawn, as never unmapped.
        keepApartFromProgramMemory(block, size: size)
        try? PrivateMemory.process.add(address: aligned, size: UInt64(size))
        return (0..<slotsPerBlock).map { Slot(address: aligned + UInt64($0) * slotSize) }
    }
}

/// The staging memory could not be mapped.
struct StagingPoolError: Error, CustomStringConvertible {
    let errno: Int32
    var description: String { "cannot map staging memory for migration: \(String(cString: strerror(errno)))" }
}
