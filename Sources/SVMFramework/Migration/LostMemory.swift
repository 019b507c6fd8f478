import Synchronization

/// The CPU addresses whose data was lost (a device reset, or a device that kept failing to
/// copy data back): their pages are poisoned, so a CPU read raises `SIGBUS` and a device
/// fault on them is refused with `EIO`. Never a page of zeros in the data's place.
///
/// An address stops being lost when its memory is unmapped or discarded (the program gave
/// the memory up; what it maps there next is new), and moves with an `mremap`.
public final class LostMemory: Sendable {
    /// Disjoint, sorted, not adjacent.
    private let intervals = Mutex<[AddressInterval]>([])

    public init() {}

    /// The lost intervals, in address order.
    public var snapshot: [AddressInterval] { intervals.withLock { $0 } }

    /// Bytes lost now.
    public var bytes: UInt64 { intervals.withLock { $0.reduce(0) { $0 + $1.size } } }

    /// Whether any byte of `interval` is lost.
    public func overlaps(_ interval: AddressInterval) -> Bool {
        intervals.withLock { $0.contains { $0.overlaps(interval) } }
    }

    /// The lost parts of `interval`, in address order.
    public func parts(of interval: AddressInterval) -> [AddressInterval] {
        intervals.withLock { lost in
            lost.compactMap { piece in
                piece.overlaps(interval)
                    ? AddressInterval(start: max(piece.start, interval.start), end: min(piece.end, interval.end)) : nil
            }
        }
    }

    /// The parts of `interval` that are not lost, in address order.
    public func intact(_ interval: AddressInterval) -> [AddressInterval] {
        var pieces: [AddressInterval] = []
        var cursor = interval.start
        for part in parts(of: interval) {
            if cursor < part.start { pieces.append(AddressInterval(start: cursor, end: part.start)) }
            cursor = part.end
        }
        if cursor < interval.end { pieces.append(AddressInterval(start: cursor, end: interval.end)) }
        return pieces
    }

    func insert(_ interval: AddressInterval) {
        intervals.withLock { lost in
            var start = interval.start, end = interval.end
            // Absorb what overlaps or touches it, keep the rest.
            lost.removeAll { piece in
                guard piece.start <= end && start <= piece.end else { return false }
                start = min(start, piece.start)
                end = max(end, piece.end)
                return true
            }
            let position = lost.firstIndex { $0.start > start } ?? lost.endIndex
            lost.insert(AddressInterval(start: start, end: end), at: position)
        }
    }

    /// Forgets `interval` (its memory was unmapped or discarded).
    func remove(_ interval: AddressInterval) {
        intervals.withLock { lost in
            lost = lost.flatMap { piece -> [AddressInterval] in
                guard piece.overlaps(interval) else { return [piece] }
                var rest: [AddressInterval] = []
                if piece.start < interval.start { rest.append(AddressInterval(start: piece.start, end: interval.start)) }
                if interval.end < piece.end { rest.append(AddressInterval(start: interval.end, end: piece.end)) }
                return rest
            }
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
