import Glibc

/// Lost data: data whose only copy was in device memory is lost when the device resets, or
/// when copying it back keeps failing. Its CPU pages are then poisoned
/// (``UserFaultFD/poison(_:length:wake:)``) and listed in ``LostMemory``: a CPU read raises
/// `SIGBUS`, a device fault is refused. Never a page of zeros in the data's place.
extension Migrator {
    /// Drops a device-resident range whose device memory lost its contents (a reset): the
    /// device memory is freed and the CPU pages are poisoned. False when the range was not
    /// in device memory (a migration back that is under way finds the copy failing and
    /// loses the data itself).
    @discardableResult
    func lose(_ range: SVMRange) -> Bool {
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return false }
        space.invalidateForMigration(range.interval)
        markLost(range, bytes: allocation.size, deviceID: allocation.deviceID, cause: .deviceReset)
        release(allocation, of: range, vacated: false)
        end(range)
        try? faults.wake(UInt(range.interval.start), length: Int(range.interval.size))
        return true
    }

    /// Poisons the CPU pages that should receive the first `bytes` of the range's data
    /// (wherever address-space changes since it left put them) and lists them as lost.
    func markLost(_ range: SVMRange, bytes: UInt64, deviceID: UInt64, cause: SVMActivityLog.LossCause) {
        var poisoned: UInt64 = 0
        forEachDestination(of: range, bytes: bytes) { _, destination, length in
            let placement = poison(at: destination, length: length)
            poisoned += placement.bytes
            return placement
        }
        trace.record("lost \(bytes) bytes (\(cause)); poisoned \(poisoned)", range.interval)
        statistics.lostRanges.count()
        statistics.lostBytes.count(Int(bytes))
        activity.record(.dataLost(deviceID: deviceID, bytes: bytes, cause: cause))
    }

    /// Poisons the missing pages of `[destination, destination + length)`; a page that is
    /// present again (new data mapped there since) or gone is skipped.
    private func poison(at destination: UInt64, length: UInt64) -> Placement {
        var done: UInt64 = 0
        var skipped = false
        while done < length {
            let start = destination + done
            let outcome: UserFaultFD.RangeOutcome
            do {
                outcome = try faults.poison(UInt(start), length: Int(length - done), wake: false)
            } catch {
                // A kernel without UFFDIO_POISON (before 6.6) cannot migrate either (6.8).
                trace.record("poison failed: \(error)", AddressInterval(start: start, end: destination + length))
                return Placement(bytes: length, mappingChanging: false, skippedPages: true)
            }
            switch outcome {
            case .completed:
                lost.insert(AddressInterval(start: start, end: destination + length))
                done = length
            case .partial(let bytes):
                lost.insert(AddressInterval(start: start, end: start + UInt64(bytes)))
                done += UInt64(bytes)
            case .mappingChanging:
                return Placement(bytes: done, mappingChanging: true, skippedPages: skipped)
            case .alreadyPresent, .notRegistered, .sourceBusy:
                // The kernel does not say how far it got: poison page by page up to the
                // page that refused, which is skipped.
                let page = poisonPageByPage(from: start, to: destination + length)
                done = page.end - destination
                skipped = true
            }
        }
        return Placement(bytes: done, mappingChanging: false, skippedPages: skipped)
    }

    /// Poisons single pages from `start` until one refuses; returns the pages dealt with,
    /// the refused one included.
    private func poisonPageByPage(from start: UInt64, to end: UInt64) -> AddressInterval {
        var page = start
        while page < end {
            let outcome = try? faults.poison(UInt(page), length: 4096, wake: false)
            page += 4096
            guard outcome == .completed else { break }
            lost.insert(AddressInterval(start: page - 4096, end: page))
        }
        return AddressInterval(start: start, end: page)
    }
}
