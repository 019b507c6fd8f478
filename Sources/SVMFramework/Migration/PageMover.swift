/// Moves the pages that hold data from one place to another with `UFFDIO_MOVE`, stepping
/// over holes itself.
///
/// Why not `UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES`: on the kernel of our machines (6.18), a move
/// with that mode that meets a transient `EAGAIN` (a page changing under it, as when an
/// `madvise(MADV_DONTNEED)` runs at the same time) and then a hole at the same address loops
/// inside the kernel forever: the error stays set while the hole counts as moved, so the
/// loop retries the same address without end. Seen as the fault handler spinning in
/// `move_pages` (kernel stack) in the concurrency test with discards. Without the mode a
/// hole ends the move with `ENOENT`, and the loop cannot spin.
struct PageMover: Sendable {
    let faults: UserFaultFD
    let pageMap: PageMap

    /// Why a move stopped before its end.
    enum Stop: Equatable {
        /// An unmap, discard or remap event is pending (or arrived during the move): read
        /// events, then look at the destinations again.
        case mappingChanging
        /// The page at the stop refused (`alreadyPresent`: its destination is taken;
        /// `notRegistered`: a mapping is gone; `sourceBusy`: the page is pinned or shared).
        case pageRefused(UserFaultFD.RangeOutcome)
        /// Source and destination have different protections now (`mprotect`), or the
        /// destination is not registered: copy.
        case protectionsDiffer
    }

    /// Moves the pages holding data in `[source, source + length)` to the same offsets at
    /// `destination`; holes stay holes. Returns how many bytes from the start are dealt
    /// with (moved, or holes) and why it stopped there, `nil` when it reached the end.
    ///
    /// A page the kernel moved without reporting it (it can, when it stops early) is then
    /// at its destination: the source page is a hole, which a later move skips.
    func move(to destination: UInt64, from source: UInt64, length: UInt64, wake: Bool) -> (done: UInt64, stop: Stop?) {
        let whole = AddressInterval(start: source, end: source + length)
        // Without a page map, one run: holes then stop the move with ENOENT, one at a time.
        let runs = pageMap.populatedRuns(whole) ?? [whole]
        for run in runs {
            var position = run.start
            while position < run.end {
                let outcome: UserFaultFD.RangeOutcome
                do {
                    outcome = try faults.move(
                        to: UInt(destination + (position - source)), from: UInt(position),
                        length: Int(run.end - position), wake: wake)
                } catch {
                    // EINVAL: the protections differ (the only error left for valid ranges).
                    return (position - source, .protectionsDiffer)
                }
                switch outcome {
                case .completed:
                    position = run.end
                case .partial(let bytes):
                    // Stopped early (a hole appeared, or the mapping is changing): go on
                    // from there; a pending event answers `mappingChanging` next.
                    position += UInt64(bytes)
                case .mappingChanging:
                    return (position - source, .mappingChanging)
                case .notRegistered where !holdsData(position):
                    // ENOENT for a hole that appeared since the page map was read: step over.
                    position += 4096
                case .alreadyPresent, .notRegistered, .sourceBusy:
                    return (position - source, .pageRefused(outcome))
                }
            }
        }
        return (length, nil)
    }

    /// Whether the page at `address` holds data now (when unknown: no, so that the move
    /// goes on and makes progress).
    private func holdsData(_ address: UInt64) -> Bool {
        pageMap.populatedRuns(AddressInterval(start: address, end: address + 4096))?.isEmpty == false
    }
}
