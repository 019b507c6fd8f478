import Glibc

/// Discards: `madvise(MADV_DONTNEED)` and unmaps of data the migrator may hold.
extension Migrator {
    /// Drops a device-resident range's device memory without copying: its CPU pages were
    /// discarded or unmapped in whole, so the data is gone.
    func discard(_ range: SVMRange) {
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return }
        trace.record("discarded devmem \(allocation.offset)", range.interval)
        release(allocation, of: range, vacated: false)
        end(range)
    }

    /// Takes the CPU pages of `interval` out of place (they become holes that read as
    /// zero), where the data is in system memory. Done for `madvise(MADV_DONTNEED)` as soon
    /// as its event is read: the kernel drops the pages only after that, when the calling
    /// thread runs again, which on a busy machine can be long after the event is handled;
    /// a migration departing after the event is marked handled would otherwise carry the
    /// discarded data to device memory (and bring it back later). So this returns only when
    /// every page is out: a move refused with `EAGAIN` (the kernel keeps the mapping
    /// "changing" until that thread runs) is tried again, reading events meanwhile.
    /// A range a migration owns is waited for: the migration may give up and leave the
    /// pages in place. Device-resident ranges have no CPU pages to drop.
    ///
    /// Done as well when no page of the interval is present any more: the discarding thread
    /// ran and the kernel dropped them (a migration's put-back follows the log and skips
    /// them). That check comes before reading more events: a thread that discards page
    /// after page queues its next event as soon as the last one is read, which keeps the
    /// mapping "changing", and reading ahead every time let the queue of events grow
    /// faster than the handler served them, starving the faults behind them.
    func discardCPUPages(_ interval: AddressInterval) {
        while !moveOutOnce(interval) {
            if mirror.mover.pageMap.holdsNoData(interval) == true {
                trace.record("discarding CPU pages: none left in place", interval)
                return
            }
            trace.record("discarding CPU pages: the mapping is changing, a page is pinned or a migration runs; again", interval)
            mirror.letMappingChangeProceed()
            sched_yield()
        }
    }

    /// One pass of ``discardCPUPages(_:)``; false when a move was refused because the
    /// mapping is changing or a page was pinned, or a migration owns a range.
    private func moveOutOnce(_ interval: AddressInterval) -> Bool {
        space.withRanges(overlapping: interval) { ranges in
            var complete = true
            var cursor = interval.start
            for range in ranges {
                if cursor < range.interval.start {
                    complete = moveOut(AddressInterval(start: cursor, end: range.interval.start)) && complete
                }
                let start = max(range.interval.start, interval.start)
                let end = min(range.interval.end, interval.end)
                let inSystemMemory = range.residency.whileInSystemMemory {
                    complete = moveOut(AddressInterval(start: start, end: end)) && complete
                }
                // A migration owns the range: it may give up with the pages still in place
                // (a move refused while the mapping changes), so wait until it is done.
                if !inSystemMemory, case .migrating = range.residency.current { complete = false }
                cursor = max(cursor, end)
            }
            if cursor < interval.end { complete = moveOut(AddressInterval(start: cursor, end: interval.end)) && complete }
            return complete
        }
    }

    /// Moves the pages of `interval` into staging slots (whose pages are reused or dropped
    /// later); false when a move stopped because the mapping is changing or a page is pinned
    /// for a moment (a device access through `process_vm_readv`): try again.
    private func moveOut(_ interval: AddressInterval) -> Bool {
        // Poisoned pages hold nothing to drop (and a move of one fails with EFAULT).
        lost.intact(interval).allSatisfy(moveOutIntact)
    }

    private func moveOutIntact(_ interval: AddressInterval) -> Bool {
        var start = interval.start
        while start < interval.end {
            let length = min(interval.end - start, StagingPool.slotSize)
            guard var slot = try? mirror.staging.takeEmpty(length) else { return true }
            trace.record("discarding CPU pages", AddressInterval(start: start, end: start + length))
            let stop = moveIntoSlot(slot.address, from: AddressInterval(start: start, end: start + length)).stop
            slot.mayHold(length)
            mirror.staging.recycle(slot)
            if stop == .mappingChanging || stop == .pageRefused(.sourceBusy) { return false }
            start += length
        }
        return true
    }
}
