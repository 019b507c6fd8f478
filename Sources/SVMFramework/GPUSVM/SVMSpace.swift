import SVMPluginKit
import Synchronization

/// The mirror of one CPU address space for devices (`drm_gpusvm`): notifiers, their ranges,
/// invalidation and garbage collection. It holds no device: devices register a
/// ``SVMDeviceMapper`` so that invalidations reach their page tables.
///
/// Locking, outermost first:
/// - `structure` (the `drm_gpusvm` lock) serializes changes of the trees: fault handling and
///   garbage collection.
/// - ``notifierLock`` is taken for writing by invalidations (they bump sequence numbers and
///   zap devices) and by tree changes, and for reading by page-table commits. Neither lock is
///   ever held while managed memory is touched.
public final class SVMSpace: @unchecked Sendable {
    public let configuration: SVMConfiguration
    public let cpu: any CPUAddressSpace
    public let notifierLock = NotifierLock()

    /// Serializes tree changes; the trees themselves are also guarded by `notifierLock`.
    private let structure = Lock()
    // Protected by `structure` for writing and `notifierLock` for reading. Unchecked: those
    // locks make the accesses exclusive, and the runtime's check cost a call per access.
    @exclusivity(unchecked) private var notifiers = IntervalTree<Notifier>()
    /// The devices invalidations reach. Protected by `notifierLock`, for writing both ways:
    /// the only readers are invalidations and the garbage collector, which hold it so (no
    /// lock of its own and no copy per invalidation). Unchecked as `notifiers`.
    @exclusivity(unchecked) private var devices: [SVMDeviceMapper] = []
    /// Ranges an unmap ended, waiting for the garbage collector.
    private let garbage = Locked<[SVMRange]>([])
    /// Whether `garbage` may hold a range: set under its lock after an append, cleared under
    /// it when the collector takes them, so that a fault (which collects first) finding none
    /// skips the lock. An unmap that finished before a fault began is seen by it.
    private let garbageQueued = Atomic<Bool>(false)
    /// Bumped by every invalidation that is not a migration (unmap, remap, discard,
    /// protection change): a CPU mapping a range cached before is not trusted after it (see
    /// ``lookUp(faultAddress:write:protection:)``).
    private let addressSpaceChanges = Atomic<UInt64>(0)

    public init(configuration: SVMConfiguration = .standard, cpu: any CPUAddressSpace) {
        self.configuration = configuration
        self.cpu = cpu
    }

    // MARK: devices

    public func register(_ device: SVMDeviceMapper) {
        notifierLock.withWriteLock { devices.append(device) }
    }

    public func unregister(deviceID: UInt64) {
        notifierLock.withWriteLock { devices.removeAll { $0.deviceID == deviceID } }
    }

    // MARK: ranges

    /// Finds the range containing `address`, or creates one with the largest chunk that
    /// fits (see ``RangeChunkSelector``). Runs the garbage collector first, as a fault does.
    /// - Throws: ``SVMFaultError`` when nothing is mapped there or the access is not allowed.
    public func findOrInsertRange(faultAddress address: UInt64, write: Bool) throws(SVMFaultError)
        -> (range: SVMRange, notifier: Notifier)
    {
        let found = try lookUp(faultAddress: address, write: write)
        return (found.range, found.notifier)
    }

    /// ``findOrInsertRange(faultAddress:write:)`` that also returns the CPU mapping it found,
    /// whose protection decides what the device may do.
    ///
    /// `protection`: the generation of the CPU mirror's protection changes, when no change
    /// runs (`nil` otherwise). With it, a range the mirror watches keeps the mapping found for
    /// it and a later fault there uses it without asking the kernel (`find_vma`, one
    /// `PROCMAP_QUERY`): every change of such a range's mapping reaches the space as an
    /// invalidation (an unmap or remap event, or a protection change through libc), which
    /// makes the cached mapping stale, as does any protection change since.
    public func lookUp(faultAddress address: UInt64, write: Bool, protection: UInt64? = nil) throws(SVMFaultError)
        -> (range: SVMRange, notifier: Notifier, mapping: CPUMapping)
    {
        collectGarbage()
        // Read before the mapping is: a change from here on makes what is cached stale.
        let key = protection.map { SVMRange.MappingKey(addressSpace: addressSpaceChanges.load(ordering: .acquiring), protection: $0) }
        func allowed(_ mapping: CPUMapping) throws(SVMFaultError) {
            guard mapping.readable else { throw .accessDenied(address: address, write: write) }
            if write && !mapping.writable { throw .accessDenied(address: address, write: true) }
        }
        let existing = existingRange(containing: address)
        if let key, let (range, notifier) = existing, range.flags.load().contains(.mirrored),
            let mapping = range.cachedMapping(for: key)
        {
            try allowed(mapping)
            return (range, notifier, mapping)
        }
        if let (range, notifier) = existing {
            guard let mapping = cpu.mapping(containing: address) else { throw .notMapped(address: address) }
            try allowed(mapping)
            // Kept also for a range the mirror does not watch yet, and used once it does: the
            // fault that found it registers it right after this lookup, so that the second
            // fault of a range does not ask the kernel again. A change between this query and
            // the registration is not seen, as it is not by the fault that made the query.
            if let key { range.cache(mapping, for: key) }
            return (range, notifier, mapping)
        }
        // A new range: whether it is in a heap is asked once, not on every fault's lookup,
        // and outside the structure lock: the check reads what may be a missing page, which
        // waits for the CPU mirror when it serves kernel-mode faults, and the mirror's
        // handler takes that lock.
        guard let (mapping, heap) = cpu.mappingForNewRange(containing: address) else { throw .notMapped(address: address) }
        try allowed(mapping)
        let (range, notifier) = try structure.withLock { () throws(SVMFaultError) in
            let notifierInterval = Notifier.interval(containing: address, size: configuration.notifierSize)
            let existingNotifier = notifiers.find(containing: address)?.value
            let notifier = existingNotifier ?? Notifier(interval: notifierInterval)
            // Made by another thread meanwhile.
            if let existing = notifier.ranges.find(containing: address) { return (existing.value, notifier) }
            guard let interval = RangeChunkSelector.select(
                faultAddress: address, mapping: mapping.interval, notifier: notifierInterval,
                configuration: configuration,
                overlapsExisting: { notifier.ranges.hasOverlap($0) },
                pagesPresent: { cpu.pagesPresent($0) })
            else { throw .notMapped(address: address) }
            let flags: RangeFlags = heap ? [.allocatorHeap] : mapping.canMigrate ? [.migrateDevmem] : []
            let range = SVMRange(interval: interval, flags: flags)
            notifierLock.withWriteLock {
                if existingNotifier == nil { notifiers.insert(notifierInterval, notifier) }
                notifier.ranges.insert(interval, range)
            }
            return (range, notifier)
        }
        if let key { range.cache(mapping, for: key) }
        return (range, notifier, mapping)
    }

    /// The range containing `address` and its notifier, if one exists.
    private func existingRange(containing address: UInt64) -> (SVMRange, Notifier)? {
        structure.withLock { () -> (SVMRange, Notifier)? in
            guard let notifier = notifiers.find(containing: address)?.value,
                let range = notifier.ranges.find(containing: address)?.value
            else { return nil }
            return (range, notifier)
        }
    }

    /// Runs `body` with the range containing `address` (or `nil`) while no range can be
    /// inserted: for work that must not race with a new range being made and migrated.
    public func withRange<T>(containing address: UInt64, _ body: (SVMRange?) -> T) -> T {
        structure.withLock { body(range(containing: address)) }
    }

    /// Runs `body` with the ranges overlapping `interval`, in address order, while no range
    /// can be inserted.
    public func withRanges<T>(overlapping interval: AddressInterval, _ body: ([SVMRange]) -> T) -> T {
        structure.withLock {
            let ranges = notifierLock.withReadLock {
                notifiers.overlapping(interval).flatMap { $0.value.ranges.overlapping(interval).map(\.value) }
            }
            return body(ranges.sorted { $0.interval.start < $1.interval.start })
        }
    }

    /// The range containing `address`, if one exists.
    public func range(containing address: UInt64) -> SVMRange? {
        notifierLock.withReadLock { notifiers.find(containing: address)?.value.ranges.find(containing: address)?.value }
    }

    /// How many ranges and notifiers exist.
    public var counts: (ranges: Int, notifiers: Int) {
        notifierLock.withReadLock { (notifiers.all.reduce(0) { $0 + $1.value.ranges.count }, notifiers.count) }
    }

    // MARK: invalidation

    /// The MMU-notifier callback: bumps the sequence number of every notifier `interval`
    /// touches, zaps every device's mappings of the overlapping ranges, and for an unmap marks
    /// those ranges unmapped (partially, when the unmap does not cover them) and queues them
    /// for the garbage collector. Returns the ranges it touched.
    @discardableResult
    public func invalidate(_ interval: AddressInterval, event: InvalidationEvent) -> [SVMRange] {
        var touched: [SVMRange] = []
        invalidate(interval, event: event) { touched.append($0) }
        if event.unmapsRanges, !touched.isEmpty {
            garbage.withLock { queue in
                queue.append(contentsOf: touched)
                garbageQueued.store(true, ordering: .releasing)
            }
        }
        return touched
    }

    /// ``invalidate(_:event:)`` for a migration, which needs no list of the ranges touched:
    /// no heap allocation (it runs on every migration, both ways).
    func invalidateForMigration(_ interval: AddressInterval) {
        invalidate(interval, event: .migration) { _ in }
    }

    private func invalidate(_ interval: AddressInterval, event: InvalidationEvent, touching: (SVMRange) -> Void) {
        // Before the ranges are touched: a lookup from here on asks the kernel again.
        if event != .migration { addressSpaceChanges.add(1, ordering: .releasing) }
        // DMA mappings unlinked under the lock, freed after it (empty: no allocation).
        var unlinked: [DMAMapping] = []
        defer { for mapping in unlinked { mapping.free() } }
        notifierLock.withWriteLock {
            notifiers.forEachOverlapping(interval) { _, notifier in
                notifier.sequence.invalidateLocked(under: notifierLock)
                notifier.ranges.forEachOverlapping(interval) { _, range in
                    unmapLocked(range, unmapped: event.unmapsRanges, unlinked: &unlinked)
                    if event.unmapsRanges {
                        range.flags.insert(interval.contains(range.interval) ? [.unmapped] : [.unmapped, .partialUnmap])
                    }
                    touching(range)
                }
            }
        }
    }

    /// Removes the ranges an unmap ended, after making sure no device maps them any more
    /// (unmap-before-remove). Empty notifiers go too. Returns how many ranges were removed.
    @discardableResult
    public func collectGarbage() -> Int {
        guard garbageQueued.load(ordering: .acquiring) else { return 0 }
        let queued = garbage.withLock { queue in
            defer { queue.removeAll(); garbageQueued.store(false, ordering: .relaxed) }
            return queue
        }
        guard !queued.isEmpty else { return 0 }
        var unlinked: [DMAMapping] = []
        defer { for mapping in unlinked { mapping.free() } }
        return structure.withLock {
            notifierLock.withWriteLock {
                var removed = 0
                for range in queued {
                    unmapLocked(range, unmapped: true, unlinked: &unlinked)
                    precondition(!range.isMappedByAnyDevice, "unmap-before-remove violated for \(range.interval)")
                    guard let (notifierInterval, notifier) = notifiers.find(containing: range.interval.start),
                        notifier.ranges.remove(range.interval) != nil
                    else { continue }
                    removed += 1
                    if notifier.ranges.isEmpty { notifiers.remove(notifierInterval) }
                }
                return removed
            }
        }
    }
}

extension SVMSpace {
    /// Zaps `range` on every registered device that maps it and drops their device pages
    /// (the invalidation's unmap-pages step), unlinking their DMA mappings, which it appends
    /// to `unlinked` for the caller to free once the lock is dropped; the caller holds the
    /// notifier lock for writing.
    func unmapLocked(_ range: SVMRange, unmapped: Bool, unlinked: inout [DMAMapping]) {
        notifierLock.assertHeld(.write)
        // One look first: mostly no device maps the range (a migration of data that none
        // has bound), and then there is nothing to zap or drop: pages not mapped hold no
        // addresses that count and no DMA mapping (both are published with the flag, under
        // the read lock this write lock excludes). Only an unmap has to mark them.
        guard range.isMappedByAnyDevice else {
            if unmapped { range.forEachPages { $0.markUnmappedLocked(under: notifierLock) } }
            return
        }
        for device in devices where range.pages(ifExistFor: device.deviceID)?.isMapped == true {
            device.zap(range.interval)
        }
        range.forEachPages { pages in
            if let mapping = pages.invalidateLocked(unmapped: unmapped, under: notifierLock) { unlinked.append(mapping) }
        }
    }
}

/// Why a fault cannot be serviced: the device access fails (a device fault error), the
/// process carries on.
public enum SVMFaultError: Error, Hashable, CustomStringConvertible {
    case notMapped(address: UInt64)
    case accessDenied(address: UInt64, write: Bool)

    public var description: String {
        switch self {
        case .notMapped(let address):
            "device fault at 0x\(String(address, radix: 16)): no CPU mapping there"
        case .accessDenied(let address, let write):
            "device fault at 0x\(String(address, radix: 16)): \(write ? "write" : "read") not allowed by the CPU protection"
        }
    }
}
