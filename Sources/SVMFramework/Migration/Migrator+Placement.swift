import Glibc

/// Putting pages back where the data belongs now: the address-space changes since the data
/// left its CPU pages (unmap, discard, remap, read from the mirror's log) say where each page
/// goes, and changes that arrive meanwhile are followed.
extension Migrator {
    /// Puts the first `bytes` of the slot back into CPU pages: each page goes where the
    /// address-space changes since the data left its place put that address (nowhere if it
    /// was unmapped or discarded). Changes that arrive meanwhile are taken into account.
    /// Returns whether every page left the slot.
    @discardableResult
    func putBack(_ range: SVMRange, from slot: UInt64, bytes: UInt64) -> Bool {
        forEachDestination(of: range, bytes: bytes) { offset, destination, length in
            place(slot + offset, at: destination, length: length)
        }
    }

    /// Walks the first `bytes` of the range's data in runs of pages whose destinations are
    /// contiguous, a destination being where the address-space changes since the data left
    /// put that page; `body` deals with one run and says how far it got. Runs whose pages
    /// are gone are skipped. Changes that arrive meanwhile are taken into account. Returns
    /// whether every page found its place.
    @discardableResult
    func forEachDestination(
        of range: SVMRange, bytes: UInt64, _ body: (_ offset: UInt64, _ destination: UInt64, _ length: UInt64) -> Placement
    ) -> Bool {
        guard bytes > 0, let departure = range.residency.departure else { return false }
        var vacated = true
        var offset: UInt64 = 0
        while offset < bytes {
            let placed = mirror.log.withChanges(since: departure, affecting: range.interval) { changes -> Placement in
                // The longest run of pages whose destinations are contiguous.
                let first = range.interval.start + offset
                let destination = changes.destination(of: first)
                // No change since the data left: every page goes back where it was, one run
                // (page by page, the look took 12,000 instructions for 2 MiB).
                var length: UInt64 = changes.isEmpty ? bytes - offset : 4096
                while offset + length < bytes {
                    let next = changes.destination(of: first + length)
                    guard (destination == nil && next == nil) || (destination.map { $0 + length } == next) else { break }
                    length += 4096
                }
                guard let destination else {
                    trace.record("destinations: \(length) bytes at offset \(offset) are gone", range.interval)
                    return Placement(bytes: length, mappingChanging: false, skippedPages: true)
                }
                let placed = body(offset, destination, length)
                trace.record("destinations: \(placed.bytes) of \(length) bytes at offset \(offset) to \(destination)\(placed.mappingChanging ? ", changing" : "") after \(changes.count) changes", range.interval)
                return placed
            }
            offset += placed.bytes
            vacated = vacated && !placed.skippedPages
            // A change arriving meanwhile may move the destination: look again from there.
            if placed.mappingChanging { mirror.letMappingChangeProceed() }
        }
        return vacated
    }

    /// What ``place(_:at:length:)`` did.
    struct Placement {
        /// Bytes dealt with: placed, or skipped because their place is gone or filled.
        var bytes: UInt64
        /// The address space is changing: the event must be read, then the destinations
        /// looked at again.
        var mappingChanging: Bool
        /// Some pages stayed in the slot (their place was gone or taken, or they were copied).
        var skippedPages = false
    }

    /// Moves up to `length` bytes of slot pages to the missing CPU pages at `destination`.
    /// Pages whose place is gone or already filled are skipped; a page that cannot move
    /// (shared, pinned, or protections that differ since an mprotect) is copied. It stops
    /// early when the address space is changing.
    private func place(_ source: UInt64, at destination: UInt64, length: UInt64) -> Placement {
        var done: UInt64 = 0
        var skipped = false
        while done < length {
            // No wake here: the migration wakes the range once its state is final.
            let outcome = mirror.mover.move(to: destination + done, from: source + done, length: length - done, wake: false)
            done += outcome.done
            switch outcome.stop {
            case nil:
                break
            case .mappingChanging:
                return Placement(bytes: done, mappingChanging: true, skippedPages: skipped)
            case .pageRefused(let outcome) where outcome != .sourceBusy:
                // Skip the page that refused (its place is taken or gone); the slot keeps it.
                trace.record("place: page refused: \(outcome)", AddressInterval(start: destination + done, end: destination + done + 4096))
                done += 4096
                skipped = true
            case .pageRefused, .protectionsDiffer:
                // The source page is shared (a child forked since holds it too) or pinned,
                // or the protections differ now (mprotect, mlock): copy the page instead; the
                // source keeps its page. Unless the source is a hole (the move that stopped
                // early never put a page there): nothing to place, and the copy would read
                // a missing page of registered memory, which waits for the handler when it
                // serves kernel-mode faults, while this migration holds the range.
                if mirror.mover.pageMap.holdsNoData(AddressInterval(start: source + done, end: source + done + 4096)) == true {
                    done += 4096
                    continue
                }
                let copied = try? faults.copy(to: UInt(destination + done), from: pointer(source + done)!, length: 4096, wake: false)
                if copied == .mappingChanging { return Placement(bytes: done, mappingChanging: true, skippedPages: true) }
                done += 4096
                skipped = true
            }
        }
        return Placement(bytes: done, mappingChanging: false, skippedPages: skipped)
    }
}
