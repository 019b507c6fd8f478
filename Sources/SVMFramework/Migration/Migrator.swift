import Glibc
import SVMPluginKit
import Synchronization

/// Moves the data of ranges from one location to another — system memory, or a device's
/// pagemap — with the invalidations that must come first (`drm_pagemap`'s
/// migrate-to-devmem and the devmem ops' copy-to-ram).
///
/// ## To device memory
/// Claim the range (`system → migrating`), allocate device memory (evicting least recently
/// used ranges when full), invalidate every device mapping of the range, then take the CPU
/// pages out (``Migrator/fill(_:from:)``): with zero-copy, one `UFFDIO_MOVE` carries them
/// straight into device memory; otherwise they move into a staging slot that is copied into
/// device memory. From the instant the pages leave, a CPU access faults and waits for the
/// migration (the kernel's migration entries), so no CPU write can be lost. Commit, and
/// return the allocation for the fault path to bind.
///
/// ## Back to system memory
/// Claim (`device → migrating`), invalidate device mappings, put the data back into the CPU
/// pages (moved out of device memory, or copied into a staging slot whose pages move into
/// place), free device memory. An address-space change seen meanwhile (unmap, discard,
/// remap) is applied while putting the pages back: discarded bytes are dropped, remapped
/// ones go to their new address (see `Migrator+Placement.swift`).
///
/// ## Device to device
/// One migration, owning the range throughout (`device(A) → migrating(A → B) → device(B)`),
/// recorded once with its source, target and route. When A has a peer path to B (they share
/// an owner group, see `DeviceTopology`), the data goes directly (`Migrator+Peer.swift`):
/// pages moved from A's memory into B's where both are host memory, else copied out of A
/// and into B; the CPU pages stay holes. Otherwise it goes through system memory: back into
/// the CPU pages, then on to B.
///
/// Every step that can fail gives up cleanly: the data goes back into place and the range
/// stays in system memory (the fault is then served from system memory). Losing data is in
/// `Migrator+Loss.swift`, discards in `Migrator+Discard.swift`.
///
/// A class, not a struct of eight references: every device fault carries one, and a copy of
/// the struct was eight retains and releases.
final class Migrator: Sendable {
    let space: SVMSpace
    let mirror: CPUMirror
    let statistics: SVMStatistics
    let trace: SVMTrace
    let activity: SVMActivityLog
    let lost: LostMemory
    /// The migrations under way; closed while the process forks (see ``MigrationGate``).
    let gate = MigrationGate()
    /// Fault injection for tests.
    let injection = FaultInjection()

    final class FaultInjection: Sendable {
        /// Called inside every migration to device memory, with the range, once the
        /// migration owns it (a test makes it sleep to provoke a stall).
        let stall = TestHook<@Sendable (AddressInterval) -> Void>()
        /// The same inside every migration back to system memory.
        let stallHome = TestHook<@Sendable (AddressInterval) -> Void>()
    }

    /// How long a migration to device memory waits at a closed gate before giving up (the
    /// fault then retries): a fork's preparation takes milliseconds.
    static let gateWait: Duration = .seconds(1)

    init(space: SVMSpace, mirror: CPUMirror, statistics: SVMStatistics, trace: SVMTrace, activity: SVMActivityLog, lost: LostMemory) {
        self.space = space
        self.mirror = mirror
        self.statistics = statistics
        self.trace = trace
        self.activity = activity
        self.lost = lost
    }

    var faults: UserFaultFD { mirror.faults }

    /// Migrates `range` into `pagemap`'s memory, from system memory or from another
    /// device's memory. Returns the allocation that holds the data now, for the fault path to
    /// bind, or why the data stayed in (or went back to) system memory or another party owns
    /// it.
    /// - Parameters:
    ///   - timeslice: how long CPU faults leave the data on the device (device atomics).
    ///   - thrashing: the faulting device's guard: eviction spares what its current fault
    ///     batch migrated, and records what it evicts (see ``ThrashingGuard``).
    func migrate(
        _ range: SVMRange, to pagemap: SVMPagemap, timeslice: Duration? = nil, thrashing: ThrashingGuard? = nil
    ) -> Result<DeviceAllocation, MigrationRefusal> {
        // A fork closes the gate only for as long as it brings data home: waiting longer is
        // a stall, which the watchdog reports.
        guard let ticket = gate.enterTowardDevice(range.interval, device: pagemap.deviceID, patience: Self.gateWait) else {
            return .failure(.raced)
        }
        defer { gate.leave(ticket) }
        guard range.flags.load().contains(.mirrored), range.flags.load().contains(.migrateDevmem),
            mirror.canMigrate, pagemap.hasDeviceMemory,
            let previous = range.residency.beginMigration(to: pagemap, departure: { mirror.log.depart() })
        else { return .failure(.raced) }
        let interval = range.interval
        if let stall = injection.stall.current { stall(interval) }
        var source = MemoryLocation.system
        if case .device(let old) = previous {
            source = .device(old.pagemap)
            if let path = old.pagemap.peerPath(to: pagemap.deviceID) {
                return migrateDirectly(range, from: old, to: pagemap, path: path, timeslice: timeslice, thrashing: thrashing)
            }
            trace.record("device \(old.deviceID) to device \(pagemap.deviceID): through system memory", interval)
            space.invalidateForMigration(interval)
            // The data must be back at the range's own addresses, whole, to go on.
            guard bringHome(range, from: old), !intervened(range) else { return .failure(giveUp(range, wake: true)) }
        }
        trace.record("to device \(pagemap.deviceID): begin at log \(range.residency.departure ?? -1)", interval)
        guard var allocation = pagemap.allocate(size: interval.size, evict: {
            evictLeastRecentlyUsed(of: pagemap, sparing: range, thrashing: thrashing)
        }) else {
            return .failure(giveUp(range, wake: source != .system))
        }
        allocation.hold(for: timeslice)
        space.invalidateForMigration(interval)
        let filled: Filled
        switch fill(allocation, from: range) {
        case .success(let done):
            filled = done
        case .failure(let refusal):
            release(allocation, of: range, vacated: !pagemap.isZeroCopy)
            return .failure(giveUp(range, wake: true, refusal))
        }
        // An unmap, discard or remap of the range since the data left: put it back instead.
        guard range.residency.commitMigrationToDevice(allocation, intervened: { changed(interval, since: $0) }) else {
            trace.record("to device: put back", interval)
            let vacated = unfill(filled, allocation, of: range)
            release(allocation, of: range, vacated: vacated)
            return .failure(giveUp(range, wake: true))
        }
        finish(filled)
        trace.record("to device: committed, devmem \(allocation.offset)", interval)
        pagemap.residents.touch(range)
        if source == .system {
            statistics.migrationsToDevice.count()
            statistics.bytesToDevice.count(Int(interval.size))
        } else {
            statistics.migrationsBetweenDevices.count()
            statistics.bytesBetweenDevices.count(Int(interval.size))
        }
        activity.record(.migration(from: source.id, to: .device(pagemap.deviceID), bytes: interval.size, cause: .deviceFault))
        // Threads that faulted on the range while it travelled from another device sleep
        // on its pages: they refault now and find it in device memory.
        if source != .system { try? faults.wake(UInt(interval.start), length: Int(interval.size)) }
        return .success(allocation)
    }

    /// Migrates `range` from device memory back into its CPU pages (wherever the address
    /// space changes since it left put them); false when it was not in device memory. Safe
    /// on the CPU fault handler thread.
    /// `beforeWake` runs before the waiting threads are woken (to count, so that they see it).
    @discardableResult
    func migrateToSystem(_ range: SVMRange, cause: SVMActivityLog.Cause = .release, beforeWake: () -> Void = {}) -> Bool {
        let ticket = gate.enterTowardSystem(range.interval)
        defer { gate.leave(ticket) }
        guard let (allocation, _) = range.residency.beginMigrationToSystem() else { return false }
        if let stall = injection.stallHome.current { stall(range.interval) }
        space.invalidateForMigration(range.interval)
        let copied = bringHome(range, from: allocation)
        end(range)
        trace.record("to system: ended, data back \(copied)", range.interval)
        if copied {
            statistics.migrationsToSystem.count()
            statistics.bytesToSystem.count(Int(allocation.size))
            activity.record(.migration(from: .device(allocation.deviceID), to: .system, bytes: allocation.size, cause: cause))
        }
        beforeWake()
        // Whoever waits on the range's pages sleeps until woken (on lost data it then gets
        // SIGBUS).
        try? faults.wake(UInt(range.interval.start), length: Int(range.interval.size))
        return true
    }

    /// Evicts the least recently used range of `pagemap` (not `sparing`, nor what the
    /// current fault batch of `thrashing`'s device migrated) to system memory.
    func evictLeastRecentlyUsed(of pagemap: SVMPagemap, sparing: SVMRange, thrashing: ThrashingGuard? = nil) -> Bool {
        for candidate in pagemap.residents.leastRecentlyUsed(sparing: sparing) {
            if thrashing?.spares(candidate) == true { continue }
            if migrateToSystem(candidate, cause: .eviction) {
                statistics.evictions.count()
                thrashing?.evicted(candidate)
                return true
            }
        }
        return false
    }

    // MARK: ending migrations

    /// Whether an address-space change touched the range since its data left the CPU pages.
    func intervened(_ range: SVMRange) -> Bool {
        guard let departure = range.residency.departure else { return true }
        return changed(range.interval, since: departure)
    }

    /// Whether an address-space change logged since `departure` touched `interval`.
    func changed(_ interval: AddressInterval, since departure: Int) -> Bool {
        mirror.log.changes(since: departure).contains { $0.affects(interval) }
    }

    /// Empties (with zero-copy, unless `vacated` says the data left it) and frees a range's
    /// device memory, and forgets the range there.
    func release(_ allocation: DeviceAllocation, of range: SVMRange, vacated: Bool) {
        if !vacated { scrub(allocation) }
        allocation.pagemap.free(allocation)
        allocation.pagemap.residents.remove(range)
    }

    /// A migration to device memory ends in system memory; `wake` wakes the threads waiting
    /// on the range's pages (they were holes for a while).
    func giveUp(_ range: SVMRange, wake: Bool, _ refusal: MigrationRefusal = .raced) -> MigrationRefusal {
        end(range)
        statistics.failedMigrations.count()
        if wake { try? faults.wake(UInt(range.interval.start), length: Int(range.interval.size)) }
        return refusal
    }

    /// Ends a migration in system memory and gives its log position back.
    func end(_ range: SVMRange) {
        if let departure = range.residency.endMigrationInSystemMemory() { mirror.log.arrive(departure) }
    }
}
