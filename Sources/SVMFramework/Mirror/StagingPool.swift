import Glibc
import Synchronization

/// Private anonymous buffers that data passes through on its way between CPU pages and
/// device memory, one per migration in flight.
///
/// A migration to device memory *moves* the CPU pages of a range into a slot with
/// `UFFDIO_MOVE` (the range becomes holes in one step, which is what the kernel's migration
/// entries achieve), copies the slot into device memory and drops the slot's pages. A
/// migration back copies device memory into a slot (fresh pages) and moves them into place.
/// `UFFDIO_MOVE` wants the destination registered with the same userfaultfd, so a slot is
/// registered only for the move that fills it, and unregistered before its pages are
/// dropped: dropping them then raises no event.
///
/// Slots are 2 MiB (the largest chunk), aligned to 2 MiB so that a 2 MiB move can keep a
/// huge page whole, and read-write like the memory they serve (the move requires equal
/// protections).
final class StagingPool: @unchecked Sendable {
    static let slotSize: UInt64 = 2 << 20
    /// Slots reserved per mapping: enough for the migrations two cores run at once, and a
    /// few device threads besides; more are mapped when they run out.
    private static let slotsPerBlock = 8

    /// Free slot addresses; protected by the mutex, held only to push or pop.
    private let free = Mutex<[UInt64]>([])

    /// A slot for one migration; give it back with ``recycle(_:)``.
    func take() throws(StagingPoolError) -> UInt64 {
        if let slot = free.withLock({ $0.popLast() }) { return slot }
        let slots = try Self.mapBlock()
        free.withLock { $0.append(contentsOf: slots.dropFirst()) }
        return slots[0]
    }

    /// Drops whatever pages the slot still holds and makes it available again. The slot
    /// must not be registered with a userfaultfd (the drop would raise an event).
    func recycle(_ slot: UInt64) {
        madvise(UnsafeMutableRawPointer(bitPattern: UInt(slot)), Int(Self.slotSize), MADV_DONTNEED)
        free.withLock { $0.append(slot) }
    }

    /// Maps `slotsPerBlock` aligned slots. Never unmapped: the pool lives as long as its
    /// mirror, and slots are reused.
    private static func mapBlock() throws(StagingPoolError) -> [UInt64] {
        let size = Int(slotSize) * slotsPerBlock
        guard let block = mapAnonymousAligned(size: size, alignment: Int(slotSize), flags: MAP_PRIVATE | MAP_NORESERVE) else {
            throw StagingPoolError(errno: errno)
        }
        let aligned = UInt64(UInt(bitPattern: block))
        // No huge pages: a 4 KiB migration must not make the kernel fault a whole 2 MiB page.
        madvise(UnsafeMutableRawPointer(bitPattern: UInt(aligned)), size, MADV_NOHUGEPAGE)
        return (0..<slotsPerBlock).map { aligned + UInt64($0) * slotSize }
    }
}

/// The staging memory could not be mapped.
struct StagingPoolError: Error, CustomStringConvertible {
    let errno: Int32
    var description: String { "cannot map staging memory for migration: \(String(cString: strerror(errno)))" }
}
