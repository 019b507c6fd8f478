import Glibc
import SVMPluginKit

/// Moves the data of ranges between CPU pages and device memory (`drm_pagemap`'s
/// migrate-to-devmem and the devmem ops' copy-to-ram), with the invalidations that must
/// come first.
///
/// ## To device memory
/// Claim the range (`system → migrating`), allocate device memory (evicting least recently
/// used ranges when full), invalidate every device mapping of the range, then move the CPU
/// pages out with one `UFFDIO_MOVE` into a staging slot. From that instant a CPU access
/// faults and waits for the migration (the kernel's migration entries), so no CPU write
/// can be lost between copy and drop. Copy the slot to device memory, commit.
///
/// ## Back to system memory
/// Claim (`device → migrating`), invalidate device mappings, copy device memory into a
/// staging slot and move its pages into place (no second copy), free device memory. An
/// address-space change seen meanwhile (unmap, discard, remap) is applied while putting the
/// pages back: discarded bytes are dropped, remapped ones go to their new address.
///
/// Every step that can fail gives up cleanly: the data goes back into place and the range
/// stays in system memory (the fault is then served from system memory).
///
/// ## Lost data
/// Data whose only copy is in device memory is lost when the device resets, or when copying
/// it back keeps failing. Its CPU pages are then poisoned (``UserFaultFD/poison(_:length:wake:)``)
/// and listed in ``LostMemory``: a CPU read raises `SIGBUS`, a device fault is refused.
/// Never a page of zeros in the data's place.
struct Migrator: Sendable {
    let space: SVMSpace
    let mirror: CPUMirror
    let statistics: SVMStatistics
    let trace: SVMTrace
    let activity: SVMActivityLog
    let lost: LostMemory

    private var faults: UserFaultFD { mirror.faults }

    /// Migrates `range` into `device`'s memory. Returns false when it stayed in (or went
    /// back to) system memory, or another party owns it.
    /// `sparingBatch`: do not evict what the device's current fault batch migrated (see
    /// ``ThrashingGuard``).
    func migrateToDevice(
        _ range: SVMRange, device: SVMDevice, timeslice: Duration? = nil, sparingBatch: Bool = false, devices: () -> [SVMDevice]
    ) -> Bool {
        guard range.flags.load().contains(.mirrored), range.flags.load().contains(.migrateDevmem),
            mirror.canMigrate, device.hasDeviceMemory,
            range.residency.beginMigrationToDevice(departure: { mirror.log.depart() })
        else { return false }
        let interval = range.interval
        trace.record("to device \(device.deviceID): begin at log \(range.residency.departure ?? -1)", interval)
        guard var allocation = device.allocate(size: interval.size, evict: {
            evictLeastRecentlyUsed(of: device, sparing: range, sparingBatch: sparingBatch, devices: devices)
        }) else {
            return giveUp(range)
        }
        allocation.heldUntil = timeslice.map { ContinuousClock.now.advanced(by: $0) }
        space.invalidate(interval, event: .migration)
        guard var slot = try? mirror.staging.takeEmpty(interval.size) else {
            device.free(allocation)
            return giveUp(range)
        }
        let moved = moveIntoSlot(slot.address, from: interval).done
        // A move that stopped early may have moved pages it does not report: the whole
        // length may hold pages.
        slot.mayHold(interval.size)
        let copied = moved == interval.size && device.copyIn(allocation, from: slot.address)
        if moved == interval.size && !copied { statistics.failedCopies.count() }
        trace.record("to device: moved \(moved) bytes to slot \(slot.address), copied \(copied), devmem \(allocation.offset)", interval)
        // An unmap, discard or remap of the range since the data left: put it back instead.
        guard copied, range.residency.commitMigrationToDevice(allocation, intervened: { departure in
            mirror.log.changes(since: departure).contains { $0.affects(interval) }
        }) else {
            // A move that stopped early (a page pinned by a device access, EBUSY) does not
            // say how far it got: put back every page the slot holds; the pages it did not
            // take are still in place and are skipped.
            trace.record("to device: put back", interval)
            putBack(range, from: slot.address, bytes: interval.size)
            device.free(allocation)
            mirror.staging.recycle(slot)
            defer { try? faults.wake(UInt(interval.start), length: Int(interval.size)) }
            return giveUp(range)
        }
        mirror.staging.recycle(slot)
        trace.record("to device: committed", interval)
        device.residents.touch(range)
        statistics.migrationsToDevice.count()
        statistics.bytesToDevice.count(Int(interval.size))
        activity.record(.migration(deviceID: device.deviceID, bytes: interval.size, direction: .toDevice, cause: .deviceFault))
        return true
    }

    /// Migrates `range` from device memory back into its CPU pages (wherever the address
    /// space changes since it left put them); false when it was not in device memory. Safe
    /// on the CPU fault handler thread.
    /// `beforeWake` runs before the waiting threads are woken (to count, so that they see it).
    @discardableResult
    func migrateToSystem(
        _ range: SVMRange, devices: [SVMDevice], cause: SVMActivityLog.Cause = .release, beforeWake: () -> Void = {}
    ) -> Bool {
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return false }
        let owner = devices.first { $0.deviceID == allocation.deviceID }
        space.invalidate(range.interval, event: .migration)
        var copied = false
        if let owner, var slot = try? mirror.staging.takeForCopy(allocation.size) {
            slot.mayHold(allocation.size)
            let copiedOut = copyOut(allocation, of: owner, to: slot.address)
            trace.record("to system: devmem \(allocation.offset) copied out \(copiedOut) to slot \(slot.address)", range.interval)
            if copiedOut {
                if putBack(range, from: slot.address, bytes: allocation.size) { slot.vacated(allocation.size) }
                copied = true
            }
            mirror.staging.recycle(slot)
        }
        // The device could not give the data back (or is gone): it is lost.
        if !copied { markLost(range, bytes: allocation.size, deviceID: allocation.deviceID, cause: .copyFailure) }
        release(range, allocation, of: owner)
        trace.record("to system: ended, copied \(copied)", range.interval)
        if copied {
            statistics.migrationsToSystem.count()
            statistics.bytesToSystem.count(Int(allocation.size))
            activity.record(.migration(deviceID: allocation.deviceID, bytes: allocation.size, direction: .toSystem, cause: cause))
        }
        beforeWake()
        // Whoever waits on the range's pages sleeps until woken (on lost data it then gets
        // SIGBUS).
        try? faults.wake(UInt(range.interval.start), length: Int(range.interval.size))
        return true
    }

    /// Drops a device-resident range whose device memory lost its contents (a reset): the
    /// device memory is freed and the CPU pages are poisoned. False when the range was not
    /// in device memory (a migration back that is under way finds the copy failing and
    /// loses the data itself).
    @discardableResult
    func lose(_ range: SVMRange, devices: [SVMDevice]) -> Bool {
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return false }
        space.invalidate(range.interval, event: .migration)
        markLost(range, bytes: allocation.size, deviceID: allocation.deviceID, cause: .deviceReset)
        release(range, allocation, of: devices.first { $0.deviceID == allocation.deviceID })
        try? faults.wake(UInt(range.interval.start), length: Int(range.interval.size))
        return true
    }

    /// Poisons the CPU pages that should receive the first `bytes` of the range's data
    /// (wherever address-space changes since it left put them) and lists them as lost.
    private func markLost(_ range: SVMRange, bytes: UInt64, deviceID: UInt64, cause: SVMActivityLog.LossCause) {
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

    /// Copies device memory out, trying again after a failed copy: a device error
    /// (`EIO`) may be transient, and giving up would lose the only copy of the data.
    private func copyOut(_ allocation: DeviceAllocation, of owner: SVMDevice, to address: UInt64) -> Bool {
        for _ in 0..<Self.copyAttempts {
            if owner.copyOut(allocation, to: address) { return true }
            statistics.failedCopies.count()
        }
        return false
    }

    /// Copies out a migration back to system memory tries before it gives up.
    static let copyAttempts = 4

    /// Drops a device-resident range's device memory without copying: its CPU pages were
    /// discarded or unmapped in whole, so the data is gone.
    func discard(_ range: SVMRange, devices: [SVMDevice]) {
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return }
        trace.record("discarded devmem \(allocation.offset)", range.interval)
        release(range, allocation, of: devices.first { $0.deviceID == allocation.deviceID })
    }

    /// Frees a range's device memory and ends its migration in system memory.
    private func release(_ range: SVMRange, _ allocation: DeviceAllocation, of owner: SVMDevice?) {
        owner?.free(allocation)
        owner?.residents.remove(range)
        end(range)
    }

    /// Evicts the least recently used range of `device` (not `sparing`, nor with
    /// `sparingBatch` what the current fault batch migrated) to system memory.
    func evictLeastRecentlyUsed(of device: SVMDevice, sparing: SVMRange, sparingBatch: Bool = false, devices: () -> [SVMDevice]) -> Bool {
        for candidate in device.residents.leastRecentlyUsed(sparing: sparing) {
            if sparingBatch && device.thrashing.spares(candidate) { continue }
            if migrateToSystem(candidate, devices: devices(), cause: .eviction) {
                statistics.evictions.count()
                device.thrashing.evicted(candidate)
                return true
            }
        }
        return false
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
    func discardCPUPages(_ interval: AddressInterval) {
        while !moveOutOnce(interval) {
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

    // MARK: moving pages

    /// Moves the CPU pages of `interval` into the slot; returns the bytes dealt with (all
    /// of them unless the move stopped early, and why). Holes stay holes (they read as zero).
    private func moveIntoSlot(_ slot: UInt64, from interval: AddressInterval) -> (done: UInt64, stop: PageMover.Stop?) {
        // The move wants its destination registered with the same descriptor; registered
        // only for this move, the slot's pages can later be dropped without an event.
        guard (try? mirror.register(AddressInterval(start: slot, end: slot + interval.size))) != nil else {
            return (0, .pageRefused(.notRegistered))
        }
        defer { try? faults.unregister(UInt(slot), length: Int(interval.size)) }
        return mirror.mover.move(to: slot, from: interval.start, length: interval.size, wake: true)
    }

    /// Puts the first `bytes` of the slot back into CPU pages: each page goes where the
    /// address-space changes since the data left its place put that address (nowhere if it
    /// was unmapped or discarded). Changes that arrive meanwhile are taken into account.
    /// Returns whether every page left the slot.
    @discardableResult
    private func putBack(_ range: SVMRange, from slot: UInt64, bytes: UInt64) -> Bool {
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
    private func forEachDestination(
        of range: SVMRange, bytes: UInt64, _ body: (_ offset: UInt64, _ destination: UInt64, _ length: UInt64) -> Placement
    ) -> Bool {
        guard bytes > 0, let departure = range.residency.departure else { return false }
        var vacated = true
        var offset: UInt64 = 0
        while offset < bytes {
            let placed = mirror.log.withChanges(since: departure) { changes -> Placement in
                // The longest run of pages whose destinations are contiguous.
                let first = range.interval.start + offset
                let destination = changes.destination(of: first)
                var length: UInt64 = 4096
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
    private struct Placement {
        /// Bytes dealt with: placed, or skipped because their place is gone or filled.
        var bytes: UInt64
        /// The address space is changing: the event must be read, then the destinations
        /// looked at again.
        var mappingChanging: Bool
        /// Some pages stayed in the slot (their place was gone or taken, or they were copied).
        var skippedPages = false
    }

    /// Moves up to `length` bytes of slot pages to the missing CPU pages at `destination`.
    /// Pages whose place is gone or already filled are skipped; a mapping made read-only
    /// since gets a copy (moves need equal protections). It stops early when the address
    /// space is changing.
    private func place(_ source: UInt64, at destination: UInt64, length: UInt64) -> Placement {
        var done: UInt64 = 0
        var skipped = false
        while done < length {
            // No wake here: the migration wakes the range once its state is final.
            let (moved, stop) = mirror.mover.move(to: destination + done, from: source + done, length: length - done, wake: false)
            done += moved
            switch stop {
            case nil:
                break
            case .mappingChanging:
                return Placement(bytes: done, mappingChanging: true, skippedPages: skipped)
            case .pageRefused(let outcome):
                // Skip the page that refused; the slot keeps it.
                trace.record("place: page refused: \(outcome)", AddressInterval(start: destination + done, end: destination + done + 4096))
                done += 4096
                skipped = true
            case .protectionsDiffer:
                // The protections differ now (mprotect): copy the page instead; the slot
                // keeps its page.
                let copied = try? faults.copy(to: UInt(destination + done), from: pointer(source + done)!, length: 4096, wake: false)
                if copied == .mappingChanging { return Placement(bytes: done, mappingChanging: true, skippedPages: true) }
                done += 4096
                skipped = true
            }
        }
        return Placement(bytes: done, mappingChanging: false, skippedPages: skipped)
    }

    private func giveUp(_ range: SVMRange) -> Bool {
        end(range)
        statistics.failedMigrations.count()
        return false
    }

    /// Ends a migration in system memory and gives its log position back.
    private func end(_ range: SVMRange) {
        if let departure = range.residency.endMigrationInSystemMemory() { mirror.log.arrive(departure) }
    }
}

/// The address as a raw pointer (staging slots and CPU pages are process memory).
func pointer(_ address: UInt64) -> UnsafeMutableRawPointer? {
    UnsafeMutableRawPointer(bitPattern: UInt(address))
}
