import Glibc
import SVMPluginKit

/// How the bytes of a migration travel: moved (zero-copy, when device memory is host memory
/// registered with the mirror) or copied through a staging slot and the plugin's copy ops.
extension Migrator {
    /// How a range's data got into device memory, until the migration commits.
    enum Filled {
        /// The CPU pages moved into device memory.
        case moved
        /// The CPU pages moved into this staging slot, which was copied into device memory;
        /// the slot is kept until the commit, to put the data back if the commit is refused.
        case copied(StagingPool.Slot)
    }

    /// Takes the data of `range` out of its CPU pages into `allocation` (the CPU pages become
    /// holes): by moving them there, else by copying. A failure says why; the data is then
    /// back in place (following the log) and the threads waiting on it can be woken.
    func fill(_ allocation: DeviceAllocation, from range: SVMRange) -> Result<Filled, MigrationRefusal> {
        guard let destination = allocation.hostAddress else { return copyIn(allocation, from: range) }
        let interval = range.interval
        // No wake: nobody waits on device memory.
        let outcome = mirror.mover.move(to: destination, from: interval.start, length: interval.size, wake: false)
        trace.record("to device: moved \(outcome.done) bytes to devmem \(allocation.offset), stop \(String(describing: outcome.stop))", interval)
        if outcome.stop == nil {
            // Holes moved as holes: the block holds no page there (freed blocks are
            // scrubbed), so a device read finds zeros, mapped by the kernel's own fault
            // (device memory is registered for moves only, see CPUMirror.registerForMoves).
            statistics.bytesMoved.count(Int(interval.size))
            return .success(.moved)
        }
        // A move that stopped early may have moved pages it does not report: put back every
        // page device memory holds; the pages it did not take are still in place. Pages left
        // behind are overwritten by a copy, or dropped when the caller frees the block.
        putBack(range, from: destination, bytes: interval.size)
        switch outcome.stop {
        case .pageRefused(.sourceBusy), .protectionsDiffer:
            // Pinned, shared with a child, or mlock'ed or mprotect'ed since: try copying.
            statistics.zeroCopyFallbacks.count()
            return copyIn(allocation, from: range)
        default:
            return .failure(.raced)
        }
    }

    /// A fill whose migration may not commit (the address space changed meanwhile): puts the
    /// data back into CPU pages, following the log. Returns whether device memory was left
    /// empty.
    func unfill(_ filled: Filled, _ allocation: DeviceAllocation, of range: SVMRange) -> Bool {
        switch filled {
        case .moved:
            return putBack(range, from: allocation.hostAddress!, bytes: allocation.size)
        case .copied(let slot):
            putBack(range, from: slot.address, bytes: allocation.size)
            mirror.staging.recycle(slot)
            // Device memory holds a copy of the data: with zero-copy, its pages must go.
            return !allocation.pagemap.isZeroCopy
        }
    }

    /// The migration committed: the staging slot of a copy goes back to the pool.
    func finish(_ filled: Filled) {
        if case .copied(let slot) = filled { mirror.staging.recycle(slot) }
    }

    /// Brings the data of a device-resident range the caller owns back into its CPU pages
    /// (following the log) and frees the device memory. Data the device cannot give back is
    /// lost: its pages are poisoned. Returns whether the data came back.
    func bringHome(_ range: SVMRange, from allocation: DeviceAllocation) -> Bool {
        if let source = allocation.hostAddress {
            let vacated = putBack(range, from: source, bytes: allocation.size)
            trace.record("to system: moved out of devmem \(allocation.offset), vacated \(vacated)", range.interval)
            statistics.bytesMoved.count(Int(allocation.size))
            release(allocation, of: range, vacated: vacated)
            return true
        }
        var copied = false
        if var slot = try? mirror.staging.takeForCopy(allocation.size) {
            slot.mayHold(allocation.size)
            copied = copyOut(allocation, to: slot.address)
            trace.record("to system: devmem \(allocation.offset) copied out \(copied) to slot \(slot.address)", range.interval)
            if copied, putBack(range, from: slot.address, bytes: allocation.size) { slot.vacated(allocation.size) }
            mirror.staging.recycle(slot)
        }
        if copied {
            statistics.bytesCopied.count(Int(allocation.size))
        } else {
            // The device could not give the data back (or is gone): it is lost.
            markLost(range, bytes: allocation.size, deviceID: allocation.deviceID, cause: .copyFailure)
        }
        release(allocation, of: range, vacated: true)
        return copied
    }

    // MARK: the copy path

    /// The copy path of ``fill(_:from:)``: the CPU pages move into a staging slot, which is
    /// copied into device memory.
    private func copyIn(_ allocation: DeviceAllocation, from range: SVMRange) -> Result<Filled, MigrationRefusal> {
        let interval = range.interval
        guard var slot = try? mirror.staging.takeEmpty(interval.size) else { return .failure(.raced) }
        let move = moveIntoSlot(slot.address, from: interval)
        let moved = move.done
        // A move that stopped early may have moved pages it does not report: the whole
        // length may hold pages.
        slot.mayHold(interval.size)
        let copied = moved == interval.size && allocation.pagemap.copyIn(allocation, from: slot.address)
        if moved == interval.size && !copied { statistics.failedCopies.count() }
        trace.record("to device: moved \(moved) bytes to slot \(slot.address), stop \(String(describing: move.stop)), copied \(copied), devmem \(allocation.offset)", interval)
        guard copied else {
            // A move that stopped early (a page pinned by a device access, EBUSY) does not
            // say how far it got: put back every page the slot holds; the pages it did not
            // take are still in place and are skipped.
            putBack(range, from: slot.address, bytes: interval.size)
            mirror.staging.recycle(slot)
            return .failure(MigrationRefusal(move.stop))
        }
        statistics.bytesCopied.count(Int(interval.size))
        return .success(.copied(slot))
    }

    /// Copies device memory out, trying again after a failed copy: a device error
    /// (`EIO`) may be transient, and giving up would lose the only copy of the data.
    private func copyOut(_ allocation: DeviceAllocation, to address: UInt64) -> Bool {
        for _ in 0..<Self.copyAttempts {
            if allocation.pagemap.copyOut(allocation, to: address) { return true }
            statistics.failedCopies.count()
        }
        return false
    }

    /// Copies out a migration back to system memory tries before it gives up.
    static let copyAttempts = 4

    // MARK: zero-copy device memory

    /// Leaves no page in a zero-copy allocation about to be freed, so that the next owner of
    /// the block never sees these bytes (the ABI's promise). No-op on the copy path.
    ///
    /// The block is unregistered from the userfaultfd for the drop, so that it raises no
    /// event (the handler thread may be the caller, and would wait for itself), then
    /// registered again. A drop, not a move: pages shared with a forked child, which no
    /// move takes, go too.
    func scrub(_ allocation: DeviceAllocation) {
        guard let block = allocation.hostInterval else { return }
        trace.record("scrub devmem \(allocation.offset)", block)
        do {
            try faults.unregister(UInt(block.start), length: Int(block.size))
            defer {
                do {
                    try mirror.registerForMoves(block)
                } catch {
                    // A block left unregistered cannot receive moved pages: migrations into
                    // it then fall back to copying, which is still correct.
                    trace.record("scrub: cannot register devmem again: \(error)", block)
                }
            }
            madvise(pointer(block.start), Int(block.size), MADV_DONTNEED)
        } catch {
            trace.record("scrub: cannot unregister devmem: \(error)", block)
        }
    }

    /// Moves the pages of `interval` into the slot; holes stay holes (they read as zero).
    func moveIntoSlot(_ slot: UInt64, from interval: AddressInterval) -> PageMover.Outcome {
        // The move wants its destination registered with the same descriptor; registered
        // only for this move, the slot's pages can later be dropped without an event.
        guard (try? mirror.register(AddressInterval(start: slot, end: slot + interval.size))) != nil else {
            return PageMover.Outcome(done: 0, stop: .pageRefused(.notRegistered))
        }
        defer { try? faults.unregister(UInt(slot), length: Int(interval.size)) }
        return mirror.mover.move(to: slot, from: interval.start, length: interval.size, wake: false)
    }
}

/// Why a migration left the data where it was.
enum MigrationRefusal: Error, Equatable {
    /// Another party owns the range, there is no device memory, or the address space changed
    /// under the migration: a later fault may succeed.
    case raced
    /// A page is shared with another process (a child forked since) or pinned: no move takes
    /// it until a write gives this process its own copy (``SVMRange`` memory is never
    /// written by the framework while it owns the range).
    case pagesShared
    /// A page is `mlock`ed (moves refuse locked memory) or its protection changed.
    case pagesLocked

    init(_ stop: PageMover.Stop?) {
        switch stop {
        case .pageRefused(.sourceBusy): self = .pagesShared
        case .protectionsDiffer: self = .pagesLocked
        default: self = .raced
        }
    }
}

