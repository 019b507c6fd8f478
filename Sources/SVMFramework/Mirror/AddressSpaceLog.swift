import SVMPluginKit
import Synchronization

/// Every change of registered memory the mirror has read (unmap, discard, remap), in order,
/// so that a migration putting data back into CPU pages can tell where each byte belongs
/// now: the data left its pages at some point of the log, and every change after that
/// point applies to it, even changes of other addresses it was remapped through.
///
/// Entries are kept while some migration may still need them: each taker of a position
/// (``depart()``) gives it back (``arrive(_:)``), and entries older than every position
/// still held are dropped.
final class AddressSpaceLog: Sendable {
    private struct State {
        /// Index of `changes[0]`.
        var base = 0
        var changes: [AddressSpaceChange] = []
        /// Positions held by data away from its pages, with how many hold each, oldest
        /// first: a new one is never older than the last (positions are `handled` counts,
        /// which only grow), so the list stays sorted by appending. A list, not a
        /// dictionary: it holds one or a few positions, and each migration looked it up
        /// twice, with a hash each time.
        var held: [(position: Int, count: Int)] = []
        /// How many changes the handler has finished handling; the rest are in flight.
        var handled = 0
    }

    private let state = Locked(State())
    /// Held for writing while the mirror reads an event and logs it, for reading while a
    /// migration puts pages where the log says (``withChanges(since:_:)``).
    private let reading = ReaderWriterLock(preferWriters: true)

    /// Runs `body`, in which the mirror reads one event and appends its change, while no
    /// ``withChanges(since:_:)`` body runs.
    func recording<T>(_ body: () -> T) -> T {
        reading.withWriteLock(body)
    }

    /// Runs `body` with the changes since `position`, reading no event until it returns.
    ///
    /// Why: the kernel makes a change (drops discarded pages, for one) only after its event
    /// is read. A page put back by `body` where a list made before that read says, but after
    /// the kernel made the change, would bring discarded data back. With no read in between,
    /// a page put back either lands before the change (which then applies to it) or its
    /// move fails with `EAGAIN` while the event waits; `body` must return then, so that the
    /// event can be read, and be called again with the longer list.
    ///
    /// Only the changes that can apply to data of `interval` (see
    /// `relevant(to:)` below): a thread discarding other memory without pause
    /// logs thousands of changes during one migration, and following each of them for each
    /// page made putting 64 KiB back take minutes.
    func withChanges<T>(since position: Int, affecting interval: AddressInterval, _ body: ([AddressSpaceChange]) -> T) -> T {
        reading.withReadLock {
            // Filtered where the log lies: no copy of changes the range does not need.
            let relevant = state.withLock { state in
                state.changes[max(0, position - state.base)...].relevant(to: interval)
            }
            return body(relevant)
        }
    }

    /// Runs `body` with the discards read but not handled yet, reading no event until it
    /// returns.
    ///
    /// Why: between the read of a discard's event and the end of its handling, the kernel
    /// drops the pages and the discarding thread may write them again; its writes fault into
    /// the handler, which serves them after the discard, unless someone else filled the page
    /// meanwhile (a zero page the write then goes to without a fault), and the handler's
    /// discard would take the new bytes away. Fillers of missing pages leave these alone.
    func withDiscardsInFlight<T>(_ body: ([AddressInterval]) -> T) -> T {
        reading.withReadLock {
            let pending = state.withLock { state in
                state.changes[max(0, state.handled - state.base)...].compactMap { change -> AddressInterval? in
                    if case .discarded(let interval) = change { interval } else { nil }
                }
            }
            return body(pending)
        }
    }

    func append(_ change: AddressSpaceChange) {
        state.withLock { state in
            state.changes.append(change)
            // Trim now and then, not on every append.
            guard state.changes.count > 1024 else { return }
            let oldest = min(state.held.first?.position ?? state.handled, state.handled)
            let drop = oldest - state.base
            if drop > 0 {
                state.changes.removeFirst(drop)
                state.base = oldest
            }
        }
    }

    /// Marks the oldest change in flight handled.
    func markHandled() {
        state.withLock { $0.handled += 1 }
    }

    /// The position data leaving its pages now starts from, held until ``arrive(_:)``:
    /// every change not yet handled counts as after it. (A discard is read before the kernel
    /// drops the pages, so data moved out after the read may still be the discarded data.)
    func depart() -> Int {
        state.withLock { state in
            let position = state.handled
            if let last = state.held.indices.last, state.held[last].position == position {
                state.held[last].count += 1
            } else {
                state.held.append((position, 1))
            }
            return position
        }
    }

    func arrive(_ position: Int) {
        state.withLock { state in
            guard let index = state.held.firstIndex(where: { $0.position == position }) else { return }
            if state.held[index].count > 1 { state.held[index].count -= 1 } else { state.held.remove(at: index) }
        }
    }

    /// The changes since `position`, in order.
    func changes(since position: Int) -> [AddressSpaceChange] {
        state.withLock { state in Array(state.changes[max(0, position - state.base)...]) }
    }
}

extension AddressSpaceChange {
    /// Whether the change touches any byte of `interval`.
    func affects(_ interval: AddressInterval) -> Bool {
        switch self {
        case .discarded(let gone): gone.overlaps(interval)
        case .remapped(let from, _, let length): AddressInterval(start: from, end: from + length).overlaps(interval)
        }
    }
}

extension Sequence<AddressSpaceChange> {
    /// The changes that can move or drop a byte of `interval`, in order: those touching the
    /// interval or a place a remap before them carried part of it to. Every other change
    /// leaves each such byte where it is (``destination(of:)`` is the same without them).
    func relevant(to interval: AddressInterval) -> [AddressSpaceChange] {
        var places = [interval]
        var kept: [AddressSpaceChange] = []
        for change in self where places.contains(where: change.affects) {
            kept.append(change)
            guard case .remapped(let from, let to, let length) = change else { continue }
            let source = AddressInterval(start: from, end: from + length)
            for place in places {
                guard let moved = place.intersection(source) else { continue }
                places.append(AddressInterval(start: to + (moved.start - from), end: to + (moved.end - from)))
            }
        }
        return kept
    }
}
