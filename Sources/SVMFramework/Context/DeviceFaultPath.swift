import Glibc
import SVMPluginKit

/// The device fault path, one named step after another (the analog of the xe driver's
/// `xe_svm_handle_pagefault`):
///
/// 1. wait for the address-space changes already made to be handled;
/// 2. find or insert the range (collecting garbage first);
/// 3. refuse lost data; register the range with the mirror;
/// 4. choose the placement (``Placement``, the policy);
/// 5. migrate, which returns the allocation to bind, or populate system memory in place;
/// 6. read the notifier sequence, check the data is still where step 5 left it, and commit
///    the binding under the notifier lock if the sequence is unchanged;
///
/// all inside the one sequence-retry loop (``withSequenceRetry(timeout:_:)``): a step that
/// finds the range busy or invalidated returns `nil`, and the loop starts again, until the
/// fault timeout.
///
/// A class made once per context: a struct of its ten references, made for every fault as it
/// was, cost ten retains and releases each time.
final class DeviceFaultPath: Sendable {
    let space: SVMSpace
    let mirror: CPUMirror?
    let migrator: Migrator?
    let cpu: ProcessAddressSpace
    let statistics: SVMStatistics
    let trace: SVMTrace
    let activity: SVMActivityLog
    let lostMemory: LostMemory
    let policy: MigrationPolicy
    /// The timeout, the atomic timeslice and the test's contention hook, read when used.
    let settings: FaultSettings

    init(
        space: SVMSpace, mirror: CPUMirror?, migrator: Migrator?, cpu: ProcessAddressSpace, statistics: SVMStatistics,
        trace: SVMTrace, activity: SVMActivityLog, lostMemory: LostMemory, policy: MigrationPolicy, settings: FaultSettings
    ) {
        self.space = space
        self.mirror = mirror
        self.migrator = migrator
        self.cpu = cpu
        self.statistics = statistics
        self.trace = trace
        self.activity = activity
        self.lostMemory = lostMemory
        self.policy = policy
        self.settings = settings
    }

    /// Migrations one fault may start before it settles for system memory: past a few, the
    /// range ping-pongs with another party (the xe driver's fallback as well).
    static let migrationAttempts = 3
    /// How long a fault waits at a time for a migration another party owns.
    static let migrationWait: Duration = .milliseconds(1)
    /// Passes a fault makes before it reserves its range against other devices' faults:
    /// as many as the migrations it may try, so that a fault that keeps losing its range
    /// to another device (each migrating it away before the other commits) gets it — the
    /// xe driver's fix for the same livelock takes a lock exclusively and retries.
    static let reserveAfterPasses = migrationAttempts

    /// What the fault does with the range, given where its data is.
    enum Placement {
        /// Another party's migration owns the data: wait for it.
        case wait
        /// In this device's memory: bind it.
        case bindDevice(DeviceAllocation)
        /// In a peer's memory, which this device reaches over a peer path: bind it there, in
        /// place (the owner's pagemap hands out the address, see `SVMPagemap.deviceMap`).
        case bindPeer(DeviceAllocation)
        /// Migrate it into this pagemap's memory (from system memory or another device's):
        /// the faulting device's own, or the one a prefetch names.
        case migrate(SVMPagemap)
        /// In another device's memory, but this fault maps system memory: bring it home.
        case bringHome
        /// Map the CPU pages in place.
        case bindSystem
    }

    /// What one fault has tried so far.
    private struct Progress {
        /// The fault's timeout, read once when it starts (the setting may change meanwhile).
        let timeout: Duration
        /// When the fault gives up (its timeout): no wait inside it outlasts this either.
        let deadline: ContinuousClock.Instant
        var migrationsTried = 0
        var countedThrashing = false
        var brokeSharing = false
        /// The device could not map a peer's memory (its plugin cannot reach that peer).
        var peerRefused = false
        /// For a prefetch, the memory the data goes to (see ``prefetch(device:address:into:)``).
        var prefetchInto: SVMPagemap?
        /// Passes made so far, and the range this fault reserved (see ``reserveAfterPasses``).
        var passes = 0
        var reserved: SVMRange?

        init(timeout: Duration) {
            self.timeout = timeout
            deadline = .now + timeout
        }
    }

    /// Services one device fault: on return the device may replay the access.
    /// - Throws: `PluginErrno` for the device: `.badAddress` (nothing mapped), `.accessDenied`
    ///   (protection, or an atomic without device memory), `.ioError` (lost data),
    ///   `.tryAgain` (the fault timeout passed).
    func service(device: SVMDevice, address: UInt64, access: DeviceAccess) throws {
        try service(device: device, address: address, access: access, progress: Progress(timeout: settings.timeout))
    }

    /// Prefetches the range containing `address` for `device` (the xe driver's prefetch
    /// bind): the range migrates into `pagemap` — the device's own memory, or a peer's it
    /// has a path to — and is bound on `device`, locally or over the peer path, so that
    /// the device's accesses there fault no more. Memory that cannot migrate is bound in
    /// place, as a fault would.
    /// - Throws: as ``service(device:address:access:)``; `.noLink` for a peer without a path.
    func prefetch(device: SVMDevice, address: UInt64, into pagemap: SVMPagemap) throws {
        guard pagemap === device.pagemap || device.pagemap.peerPath(to: pagemap.deviceID) != nil else { throw PluginErrno.noLink }
        var progress = Progress(timeout: settings.timeout)
        progress.prefetchInto = pagemap
        try service(device: device, address: address, access: [], progress: progress)
    }

    private func service(device: SVMDevice, address: UInt64, access: DeviceAccess, progress: consuming Progress) throws {
        var progress = progress  // moved, not copied
        defer { progress.reserved?.residency.releaseReservation(for: device.deviceID) }
        let before = FailureCounts.now(device: device, statistics: statistics)
        do {
            try withSequenceRetry(until: progress.deadline, timeout: progress.timeout) { () throws -> Void? in
                try attempt(device: device, address: address, access: access, progress: &progress)
            }
        } catch let timeout as SequenceRetryTimeout {
            let failed = FailureCounts.now(device: device, statistics: statistics) - before
            let range = space.withRange(containing: address) { $0.map { " in range \($0.interval)" } } ?? ""
            device.recordFaultFailure(
                "the device fault at 0x\(String(address, radix: 16)) (\(access))\(range) gave up after \(timeout.timeout) and \(timeout.attempts) attempts: \(failed.explanation)")
            throw PluginErrno.tryAgain
        }
    }

    /// One pass of the flow for a fresh fault (a test's contender, see
    /// `SVMContext.contentionInjection`); whether it committed.
    func attemptOnce(device: SVMDevice, address: UInt64, access: DeviceAccess) throws -> Bool {
        var progress = Progress(timeout: settings.timeout)
        return try attempt(device: device, address: address, access: access, progress: &progress) != nil
    }

    /// Failures counted while a fault ran, to say why it gave up: the device's failed
    /// allocations, and the context's failed copies and migrations (other faults' too, if
    /// any ran meanwhile).
    private struct FailureCounts {
        var allocations: Int
        var copies: Int
        var migrations: Int

        static func now(device: SVMDevice, statistics: SVMStatistics) -> Self {
            Self(
                allocations: device.pagemap.failedAllocations.load(ordering: .relaxed),
                copies: statistics.failedCopies.load(ordering: .relaxed),
                migrations: statistics.failedMigrations.load(ordering: .relaxed))
        }

        static func - (after: Self, before: Self) -> Self {
            Self(allocations: after.allocations - before.allocations, copies: after.copies - before.copies,
                 migrations: after.migrations - before.migrations)
        }

        var explanation: String {
            var parts: [String] = []
            if allocations > 0 { parts.append("device memory allocation failed \(allocations) times") }
            if copies > 0 { parts.append("copies to or from device memory failed \(copies) times") }
            if migrations > 0 { parts.append("\(migrations) migrations were given up") }
            return parts.isEmpty ? "the range stayed busy or kept being invalidated" : parts.joined(separator: ", ")
        }
    }

    /// One pass of the flow; `nil` to start again.
    private func attempt(device: SVMDevice, address: UInt64, access: DeviceAccess, progress: inout Progress) throws -> Void? {
        // A handler stuck on an event fails the fault at its deadline (the watchdog says why).
        guard mirror?.waitUntilEventsHandled(deadline: progress.deadline) != false else { throw PluginErrno.tryAgain }
        // Read before the protection is: a change from here on fails the commit.
        let protection = mirror?.protection.generation ?? 0
        let writes = access.contains(.write) || access.contains(.atomic)
        let found: (range: SVMRange, notifier: Notifier, mapping: CPUMapping)
        do {
            // A mapping cached for a mirrored range is used only while no protection change
            // runs or ran since `protection` was read.
            let settled = mirror?.protection.generationIfSettled == protection ? protection : nil
            found = try space.lookUp(faultAddress: address, write: writes, protection: settled)
        } catch .notMapped {
            throw PluginErrno.badAddress
        } catch .accessDenied {
            throw PluginErrno.accessDenied
        }
        let range = found.range
        progress.passes += 1
        if progress.passes > Self.reserveAfterPasses, progress.reserved == nil, range.residency.reserve(for: device.deviceID) {
            progress.reserved = range
        }
        // Where the data is, read once for this pass: the policy decides on it, and the
        // commit checks it again under the notifier sequence (a lock each time it is read).
        let residency = range.residency.current
        // Lost data is never served: not from device memory, not as zeros; nor data in a
        // device memory being wiped (a reset under way).
        if lostMemory.overlaps(range.interval) || residency.location?.isResetting == true {
            statistics.faultsOnLostData.count()
            throw PluginErrno.ioError
        }
        mirrorIfNeeded(range, mapping: found.mapping)
        let atomic = access.contains(.atomic)
        let target: Residency
        // Another device's fault that kept losing the range has it until it commits.
        if range.residency.isReserved(forAnotherThan: device.deviceID) {
            range.residency.waitWhileReserved(forAnotherThan: device.deviceID, timeout: Self.migrationWait)
            return nil
        }
        switch placement(of: range, at: residency, for: device, atomic: atomic, progress: &progress) {
        case .wait:
            range.residency.waitWhileMigrating(timeout: Self.migrationWait)
            return nil
        case .bindDevice(let allocation):
            target = .device(allocation)
        case .bindPeer(let allocation):
            do {
                guard try commit(range, notifier: found.notifier, target: .device(allocation), writable: found.mapping.writable,
                                 device: device, protection: protection)
                else { return nil }
                statistics.peerMappings.count()
                activity.record(.peerMapping(deviceID: device.deviceID, owner: allocation.deviceID, bytes: allocation.size))
                return ()
            } catch let error as PluginErrno where error == .notSupported {
                progress.peerRefused = true  // migrate instead
                return nil
            }
        case .bringHome:
            migrator?.migrateToSystem(range, cause: .deviceFault)
            return nil
        case .migrate(let destination):
            progress.migrationsTried += 1
            let timeslice = atomic ? settings.atomicTimeslice : nil
            // Device atomics need device memory: they may evict what their batch migrated.
            let migrated = migrator?.migrate(range, to: destination, timeslice: timeslice, thrashing: atomic ? nil : device.thrashing)
            // One switch over the result: each `if case` on it copied it.
            switch migrated {
            case .success(let allocation)?:
                guard destination === device.pagemap else {
                    return nil  // prefetched into a peer's memory: the next pass binds it there
                }
                device.thrashing.migrated(range)
                target = .device(allocation)
            case .failure(.pagesShared)? where !progress.brokeSharing:
                // Pages shared with a forked child, or not yet this process's own again since
                // a fork (the child may be gone): a write fault gives this process its own
                // copies (or takes the pages back without a copy when nobody shares them),
                // which move. Done while no migration owns the range; the child keeps its
                // pages.
                progress.brokeSharing = true
                breakSharing(range)
                return nil
            case .failure(let refusal)? where atomic:
                // Device atomics need device memory (as on Xe without system atomics): keep
                // trying while there is some (a racing unmap or discard makes a migration
                // give up), waiting for whoever holds the range.
                guard device.hasDeviceMemory else { throw PluginErrno.accessDenied }
                // mlock'ed memory never moves, and atomics need device memory.
                if refusal == .pagesLocked { throw PluginErrno.accessDenied }
                waitIfTriedEnough(range, progress)
                return nil
            case nil where atomic:  // no migrator: no device memory to migrate into
                guard device.hasDeviceMemory else { throw PluginErrno.accessDenied }
                waitIfTriedEnough(range, progress)
                return nil
            case .failure?, nil:
                guard range.residency.isInSystemMemory else {
                    return nil  // someone else moved it meanwhile
                }
                populate(range)
                target = .system
            }
        case .bindSystem:
            if atomic { throw PluginErrno.accessDenied }
            populate(range)
            target = .system
        }
        return try commit(range, notifier: found.notifier, target: target, writable: found.mapping.writable, device: device, protection: protection) ? () : nil
    }

    /// An atomic fault that keeps failing to migrate waits for whoever holds the range,
    /// once it has tried more than ``migrationAttempts`` times.
    private func waitIfTriedEnough(_ range: SVMRange, _ progress: Progress) {
        if progress.migrationsTried > Self.migrationAttempts { range.residency.waitWhileMigrating(timeout: Self.migrationWait) }
    }

    /// The policy: where this fault wants the data, given where it is (`residency`).
    private func placement(
        of range: SVMRange, at residency: Residency, for device: SVMDevice, atomic: Bool, progress: inout Progress
    ) -> Placement {
        let migratable = migrator != nil && range.flags.load().contains(.migrateDevmem)
        if let destination = progress.prefetchInto, migratable {
            return prefetchPlacement(at: residency, for: device, into: destination, progress: progress)
        }
        switch residency {
        case .migrating:
            return .wait
        case .device(let allocation) where allocation.pagemap === device.pagemap:
            device.pagemap.residents.touch(range)
            return .bindDevice(allocation)
        case .device(let allocation):
            // In another device's memory. Policy `peer` reaches it there in place, over the
            // peer path, if there is one (atomics need local memory).
            if policy == .accessPeerInPlace, !atomic, !progress.peerRefused, device.pagemap.peerPath(to: allocation.deviceID) != nil {
                return .bindPeer(allocation)
            }
            // Another device's atomics migrated it there and hold it for their timeslice
            // (as a CPU fault waits): without this, two devices' atomics on one range steal it
            // from each other within a kernel, again and again.
            if allocation.isHeld { return .wait }
            // Migrate it, directly over a peer path or through system memory.
            let wantsDevice = policy != .systemMemory || atomic
            return wantsDevice && (progress.migrationsTried < Self.migrationAttempts || atomic) ? .migrate(device.pagemap) : .bringHome
        case .system:
            // A range this kernel already had evicted is mapped in place (see ThrashingGuard).
            let thrashes = !atomic && device.thrashing.thrashes(range)
            if thrashes && !progress.countedThrashing {
                statistics.thrashingAvoided.count()
                progress.countedThrashing = true
            }
            let wantsDevice = (policy != .systemMemory && !thrashes) || atomic
            return wantsDevice && migratable && (progress.migrationsTried < Self.migrationAttempts || atomic) ? .migrate(device.pagemap) : .bindSystem
        }
    }

    /// A prefetch's placement: the data goes into `destination` whatever the policy, then is
    /// bound there. After a few migrations that did not stick (another party kept taking
    /// the range), it is bound where it is.
    private func prefetchPlacement(at residency: Residency, for device: SVMDevice, into destination: SVMPagemap, progress: Progress) -> Placement {
        switch residency {
        case .migrating:
            return .wait
        case .device(let allocation) where allocation.pagemap === destination:
            if destination === device.pagemap { return .bindDevice(allocation) }
            guard device.pagemap.peerPath(to: destination.deviceID) != nil, !progress.peerRefused else { return .bringHome }
            return .bindPeer(allocation)
        case .device:
            return progress.migrationsTried < Self.migrationAttempts ? .migrate(destination) : .bringHome
        case .system:
            return progress.migrationsTried < Self.migrationAttempts ? .migrate(destination) : .bindSystem
        }
    }

    /// Binds the range on the device if the data is still at `target` and no invalidation
    /// came since the sequence number was read (the page-table commit of `drm_gpusvm`).
    /// `protection`: the generation of ``ProtectionChanges`` read before the lookup.
    private func commit(
        _ range: SVMRange, notifier: Notifier, target: Residency, writable: Bool, device: SVMDevice, protection: UInt64
    ) throws -> Bool {
        let sequence = notifier.sequence.readBegin()
        // A migration away after this check bumps the sequence: the commit below fails.
        guard range.residency.isCurrently(target) else { return false }
        var access: BindAccess = writable ? [.writable] : []
        let piece: BindPiece
        if case .device(let allocation) = target {
            // The owner's pagemap hands out the address this device uses (`device_map`).
            guard let address = allocation.pagemap.deviceMap(allocation, for: device.pagemap) else { throw PluginErrno.noLink }
            let isPeer = address.linkProtocol != .localVRAM
            piece = BindPiece(address: address.address, linkProtocol: address.linkProtocol, order: address.order, owner: isPeer ? allocation.deviceID : 0)
            // No atomics across a link: an atomic access faults and migrates.
            if !isPeer { access.insert(.atomic) }
        } else {
            piece = Self.piece(at: range.interval.start, size: range.interval.size, protocol: .system)
        }
        settings.contention.current?(device, range)
        // The IOVA model's first step, with no lock held (the pages are collected after the
        // sequence was read, as `hmm_range_fault` does; the check below validates them).
        let dma = dmaMapping(of: piece, range: range, device: device)
        var replaced: DMAMapping?
        let committed: Bool
        do {
            committed = try space.notifierLock.withReadLock { () throws -> Bool in
                guard !notifier.sequence.needsRetry(sequence), mirror?.protection.unchanged(since: protection) ?? true else { return false }
                // A reset that began after the check in `attempt` zapped before this commit read
                // the sequence, or will zap after it: either way the memory is not mapped again.
                if case .device(let allocation) = target, allocation.pagemap.isResetting { return false }
                replaced = try bindLocked(range, piece: piece, access: access, sequence: sequence, dma: dma, on: device)
                return true
            }
        } catch {
            dma?.free()
            throw error
        }
        // The IOVA model's last step, with the lock dropped.
        if committed { replaced?.free() } else { dma?.free() }
        return committed
    }

    /// The DMA mapping a binding of `piece` needs: system memory (its present pages, the runs
    /// between holes) and a peer's memory over PCIe (the peer's block, through this device's
    /// IOMMU). Local device memory and fabric addresses need none. Allocates the IOVA.
    private func dmaMapping(of piece: BindPiece, range: SVMRange, device: SVMDevice) -> DMAMapping? {
        switch piece.linkProtocol {
        case .system:
            return .prepare(start: range.interval.start, size: range.interval.size, runs: cpu.presentRuns(range.interval), in: device.iova)
        case .pciePeerToPeer:
            let block = AddressInterval(start: piece.address, end: piece.address + piece.size)
            return .prepare(start: block.start, size: block.size, runs: [block], in: device.iova)
        case .localVRAM, .fabric:
            return nil
        }
    }

    /// Replaces the device's binding of `range` with `piece`, DMA-mapped through `dma`; the
    /// caller holds the notifier lock for reading and has checked `sequence`. The zap of the
    /// device's own earlier binding happens under the read lock too (the ABI's `zap` says
    /// so): commits of one range on one device are serialized by its device pages, and an
    /// invalidation, which holds the lock for writing, cannot run meanwhile. Returns the DMA
    /// mapping of the binding replaced (unlinked), for the caller to free.
    private func bindLocked(
        _ range: SVMRange, piece: BindPiece, access: BindAccess, sequence: UInt64, dma: DMAMapping?, on device: SVMDevice
    ) throws -> DMAMapping? {
        space.notifierLock.assertHeld(.read)
        let pages = range.pages(for: device.deviceID)
        return try pages.withCommit {
            if pages.isMapped { device.zap(range.interval) }
            let work = dma?.linkLocked()  // the read lock: asserted above
            do {
                try device.device.bind(address: range.interval.start, size: range.interval.size, piece: piece, access: access)
            } catch {
                dma?.unlinkLocked()
                throw error
            }
            trace.record("bound on device \(device.deviceID) to \(piece.linkProtocol) \(piece.address) at seq \(sequence)", range.interval)
            if let work { activity.record(.dmaMapping(deviceID: device.deviceID, work: work)) }
            return pages.publishLocked(
                PagemapAddress(address: piece.address, linkProtocol: piece.linkProtocol, order: piece.order),
                sequence: sequence, hasDevmem: piece.linkProtocol == .localVRAM, dma: dma, under: space.notifierLock)
        }
    }

    /// Registers a migratable range with the mirror once; a range the mirror cannot watch
    /// stays in system memory.
    private func mirrorIfNeeded(_ range: SVMRange, mapping: CPUMapping) {
        let flags = range.flags.load()
        guard let mirror, mapping.anonymous, !mapping.shared, flags.isDisjoint(with: [.mirrored, .allocatorHeap]) else { return }
        do {
            try mirror.register(range.interval)
            range.flags.insert(.mirrored)
        } catch {
            range.flags.remove(.migrateDevmem)
        }
    }

    /// Makes the CPU pages of a mirrored range present before a device maps them, as
    /// `hmm_range_fault` does: missing pages get the zero page (a device write then makes
    /// its own copy). Never by touching them: the memory may be unmapped at any moment, and
    /// a device must get a fault error then, not crash the process. Memory the mirror does
    /// not watch needs nothing: the kernel faults it in for the device's accesses.
    private func populate(_ range: SVMRange) {
        guard let mirror, range.flags.load().contains(.mirrored) else { return }
        // Under the range's state: a migration must not move data out of a page between the
        // check that it is missing and the zero fill. A changing mapping (EAGAIN) is left to
        // the device's refault.
        // Pages of a discard still being handled stay missing (see
        // AddressSpaceLog.withDiscardsInFlight): the device's refault comes after it.
        _ = range.residency.whileInSystemMemory {
            mirror.log.withDiscardsInFlight { discarding in
                for run in cpu.missingRuns(range.interval) {
                    for piece in run.subtracting(discarding) {
                        let outcome = try? mirror.faults.zeroPage(UInt(piece.start), length: Int(piece.size))
                        trace.record("populate: zero pages \(String(describing: outcome))", piece)
                    }
                }
            }
        }
    }

    /// Gives this process its own copy of the range's pages that it shares with a child
    /// (forked since they were written), with write faults that change no byte
    /// (`MADV_POPULATE_WRITE`), on the pages present only: a kernel fault on a missing page
    /// of a user-mode-only userfaultfd fails instead of reaching the handler. Only while no
    /// migration owns the range; a page that went missing meanwhile just fails the call.
    private func breakSharing(_ range: SVMRange) {
        guard let mirror, case .system = range.residency.current else { return }
        trace.record("breaking page sharing before a migration", range.interval)
        for run in mirror.mover.pageMap.populatedRuns(range.interval) ?? [] {
            _ = madvise(pointer(run.start), Int(run.size), MADV_POPULATE_WRITE)
        }
    }

    /// One piece of `size` bytes at `address` (a page-table size).
    static func piece(at address: UInt64, size: UInt64, protocol linkProtocol: LinkProtocol) -> BindPiece {
        BindPiece(address: address, linkProtocol: linkProtocol, order: UInt8((size / 4096).trailingZeroBitCount))
    }
}
