import SVMPluginKit
import Synchronization

/// The CPU addresses whose data was lost (a device reset, or a device that kept failing to
/// copy data back): their pages are poisoned, so a CPU read raises `SIGBUS` and a device
/// fault on them is refused with `EIO`. Never a page of zeros in the data's place.
///
/// An address stops being lost when its memory is unmapped or discarded (the program gave
/// the memory up; what it maps there next is new), and moves with an `mremap`.
public final class LostMemory: Sendable {
    /// Disjoint and never adjacent: touching intervals merge.
    private let intervals = Locked(IntervalTree<Void>())
    /// How many intervals there are, stored under the lock after every change: a device
    /// fault asks ``overlaps(_:)`` every time, and nothing is lost almost always (a lock
    /// each time otherwise). Read without the lock, it is as current as a locked read
    /// whose result is used after the lock is dropped.
    private let count = Atomic<Int>(0)

    public init() {}

    /// The lost intervals, in address order.
    public var snapshot: [AddressInterval] { intervals.withLock { $0.all.map(\.interval) } }

    /// Bytes lost now.
    public var bytes: UInt64 { snapshot.reduce(0) { $0 + $1.size } }

    /// Whether any byte of `interval` is lost. Asked on every device fault.
    /// - Complexity: O(log n)
    public func overlaps(_ interval: AddressInterval) -> Bool {
        guard count.load(ordering: .acquiring) > 0 else { return false }
        return intervals.withLock { $0.hasOverlap(interval) }
    }

    /// The lost parts of `interval`, in address order.
    public func parts(of interval: AddressInterval) -> [AddressInterval] {
        intervals.withLock { tree in
            tree.overlapping(interval).compactMap { piece, _ in piece.intersection(interval) }
        }
    }

    /// The parts of `interval` that are not lost, in address order.
    public func intact(_ interval: AddressInterval) -> [AddressInterval] {
        interval.subtracting(parts(of: interval))
    }

    func insert(_ interval: AddressInterval) {
        intervals.withLock { tree in
            // Absorb what overlaps or touches it.
            let neighbourhood = AddressInterval(start: interval.start - min(interval.start, 1), end: interval.end + (interval.end < .max ? 1 : 0))
            var merged = interval
            for (piece, _) in tree.overlapping(neighbourhood) {
                tree.remove(piece)
                merged = AddressInterval(start: min(merged.start, piece.start), end: max(merged.end, piece.end))
            }
            tree.insert(merged, ())
            count.store(tree.count, ordering: .releasing)
        }
    }

    /// Forgets `interval` (its memory was unmapped or discarded).
    func remove(_ interval: AddressInterval) {
        intervals.withLock { tree in
            for (piece, _) in tree.overlapping(interval) {
                tree.remove(piece)
                if piece.start < interval.start { tree.insert(AddressInterval(start: piece.start, end: interval.start), ()) }
                if interval.end < piece.end { tree.insert(AddressInterval(start: interval.end, end: piece.end), ()) }
            }
            count.store(tree.count, ordering: .releasing)
        }
    }

    /// Follows an `mremap` of `length` bytes from `from` to `to`: the poison marks move with
    /// the page-table entries.
    func remap(from: UInt64, to: UInt64, length: UInt64) {
        let old = AddressInterval(start: from, end: from + length)
        let moved = parts(of: old)
        guard !moved.isEmpty else { return }
        remove(old)
        // The new place held nothing lost: it was just mapped over.
        remove(AddressInterval(start: to, end: to + length))
        for part in moved { insert(AddressInterval(start: part.start - from + to, end: part.end - from + to)) }
    }
}
