import SVMPluginKit

/// Migrations from one device's memory directly into another's, over their peer path.
extension Migrator {
    /// Moves `range`, which this migration owns (`migrating(A → B)`), from `old` in device
    /// A's memory into `pagemap` (device B's) without passing through its CPU pages: pages
    /// moved from block to block where both memories are host memory (zero-copy), copied out
    /// of A into a staging slot and into B otherwise. When B has no memory for it, or the
    /// transfer fails, the data goes home to system memory instead, as a fault would take it
    /// without a peer; an address-space change meanwhile puts it back where the log says.
    func migrateDirectly(
        _ range: SVMRange, from old: DeviceAllocation, to pagemap: SVMPagemap, path: PeerPath, timeslice: Duration?,
        thrashing: ThrashingGuard?
    ) -> Result<DeviceAllocation, MigrationRefusal> {
        let interval = range.interval
        trace.record("device \(old.deviceID) to device \(pagemap.deviceID): directly over \(path.linkProtocol)", interval)
        // No device may use A's copy while it travels, nor B's until the commit.
        space.invalidateForMigration(interval)
        guard var allocation = pagemap.allocate(size: interval.size, evict: {
            evictLeastRecentlyUsed(of: pagemap, sparing: range, thrashing: thrashing)
        }) else {
            return .failure(giveUp(range, comingHomeFrom: old))
        }
        allocation.hold(for: timeslice)
        let moved: Bool
        if let from = old.hostAddress, let to = allocation.hostAddress {
            let outcome = mirror.mover.move(to: to, from: from, length: interval.size, wake: false)
            trace.record("device to device: moved \(outcome.done) bytes, stop \(String(describing: outcome.stop))", interval)
            guard outcome.stop == nil else {
                // Whatever moved goes back into A's block: the data is whole there again.
                _ = mirror.mover.move(to: from, from: to, length: interval.size, wake: false)
                release(allocation, of: range, vacated: false)
                return .failure(giveUp(range, comingHomeFrom: old))
            }
            moved = true
        } else {
            guard copyBetweenDevices(old, into: allocation) else {
                release(allocation, of: range, vacated: !pagemap.isZeroCopy)
                return .failure(giveUp(range, comingHomeFrom: old))
            }
            moved = false
        }
        // A's block is empty (moved) or holds a stale copy (scrubbed on release).
        release(old, of: range, vacated: moved)
        guard range.residency.commitMigrationToDevice(allocation, intervened: { changed(interval, since: $0) }) else {
            // Unmapped, discarded or remapped meanwhile: the CPU pages get what is left.
            trace.record("device to device: put back", interval)
            _ = bringHome(range, from: allocation)
            return .failure(giveUp(range, wake: true))
        }
        trace.record("device to device: committed, devmem \(allocation.offset)", interval)
        pagemap.residents.touch(range)
        if moved { statistics.bytesMoved.count(Int(interval.size)) } else { statistics.bytesCopied.count(Int(interval.size)) }
        statistics.migrationsBetweenDevices.count()
        statistics.bytesBetweenDevices.count(Int(interval.size))
        statistics.peerMigrations.count()
        activity.record(.migration(
            from: .device(old.deviceID), to: .device(pagemap.deviceID), bytes: interval.size, cause: .deviceFault,
            route: .peer(path)))
        // CPU faults on the range while it travelled sleep on its pages: they refault now
        // and find it in B's memory.
        try? faults.wake(UInt(interval.start), length: Int(interval.size))
        return .success(allocation)
    }

    /// Copies `source`'s bytes into `destination` through a staging slot, as a copy engine
    /// between the two devices would; false when a copy failed (both blocks then still hold
    /// what they held: the source its data).
    private func copyBetweenDevices(_ source: DeviceAllocation, into destination: DeviceAllocation) -> Bool {
        guard var slot = try? mirror.staging.takeForCopy(source.size) else { return false }
        slot.mayHold(source.size)
        defer { mirror.staging.recycle(slot) }
        guard source.pagemap.copyOut(source, to: slot.address) else {
            statistics.failedCopies.count()
            return false
        }
        guard destination.pagemap.copyIn(destination, from: slot.address) else {
            statistics.failedCopies.count()
            return false
        }
        return true
    }

    /// A direct migration that cannot finish: the data, still whole in `old`, goes home to
    /// the CPU pages (lost if the device cannot give it back), and the range ends in system
    /// memory.
    private func giveUp(_ range: SVMRange, comingHomeFrom old: DeviceAllocation) -> MigrationRefusal {
        _ = bringHome(range, from: old)
        return giveUp(range, wake: true)
    }
}
