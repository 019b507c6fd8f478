import Synchronization

/// Where the data of a range lives, and the migrations that move it (the MM-level state
/// `drm_gpusvm` keeps in the CPU page tables as device-private entries and migration
/// entries).
///
/// Transitions only through ``RangeResidency``: `system → migrating → device` (migration to
/// device memory), `device → migrating → system` (eviction, CPU fault), and
/// `migrating → system` (a migration given up). Whoever moves a range to `migrating` owns
/// the data until it leaves that state; every other party waits or defers.
public enum Residency: Sendable, Equatable {
    /// The data is in the CPU pages at the range's addresses (or nowhere yet: zero).
    case system
    /// The data is in device memory; the CPU pages are holes that fault.
    case device(DeviceAllocation)
    /// A migration owns the data; `toDevice` says which way it goes.
    case migrating(toDevice: Bool)
}

/// Device memory backing one range (`drm_pagemap_devmem`).
public struct DeviceAllocation: Sendable, Hashable {
    public let deviceID: UInt64
    public let offset: UInt64
    public let size: UInt64
    /// Until when (monotonic clock) CPU faults leave the data in device memory: the
    /// timeslice the xe driver grants device atomics (5 ms), so that a device makes progress
    /// before the CPU takes the range back. `nil`: no timeslice.
    public var heldUntil: ContinuousClock.Instant?

    public init(deviceID: UInt64, offset: UInt64, size: UInt64, heldUntil: ContinuousClock.Instant? = nil) {
        self.deviceID = deviceID
        self.offset = offset
        self.size = size
        self.heldUntil = heldUntil
    }

    /// Whether the timeslice still runs.
    public var isHeld: Bool { heldUntil.map { ContinuousClock.now < $0 } ?? false }
}

/// A change of the CPU address space that happened to a range while a migration owned its
/// data: the migration applies it when it puts data back into CPU pages.
public enum AddressSpaceChange: Sendable, Hashable {
    /// The pages of the interval were unmapped or discarded: their data is gone.
    case discarded(AddressInterval)
    /// `mremap` moved `[from, from + length)` to `to`.
    case remapped(from: UInt64, to: UInt64, length: UInt64)

    /// Where the byte at `address` lives after the change, or `nil` when it is gone.
    func destination(of address: UInt64) -> UInt64? {
        switch self {
        case .discarded(let interval): interval.contains(address) ? nil : address
        case .remapped(let from, let to, let length):
            (from..<from + length).contains(address) ? to + (address - from) : address
        }
    }
}

extension [AddressSpaceChange] {
    /// Where the byte at `address` lives after all the changes, in order; `nil` when gone.
    func destination(of address: UInt64) -> UInt64? {
        reduce(Optional(address)) { current, change in current.flatMap { change.destination(of: $0) } }
    }
}

/// The residency of one range with its transitions, each atomic under one small lock.
/// Never held while memory is touched or a plugin or the kernel is called.
public final class RangeResidency: Sendable {
    private struct State {
        var residency: Residency = .system
        /// While the data is away from the CPU pages: the position in the mirror's
        /// address-space log when it left them.
        var departure: Int?
    }

    private let state = Mutex(State())

    public init() {}

    public var current: Residency { state.withLock { $0.residency } }

    /// Runs `body` if the data is in system memory, holding the state so that no migration
    /// can take the data away meanwhile: for filling missing CPU pages with zeros, which
    /// must never happen to a page whose data a migration has just moved out. `body` may
    /// make a non-blocking ioctl; it must not wait for another thread.
    func whileInSystemMemory(_ body: () -> Void) -> Bool {
        state.withLock { state in
            guard state.residency == .system else { return false }
            body()
            return true
        }
    }

    /// The log position the data left its CPU pages at, while it is away.
    var departure: Int? { state.withLock { $0.departure } }

    /// `system → migrating(toDevice: true)`, taking the data away at log position
    /// `departure()` (called under the lock, so that no change slips in between); false if
    /// the range is not in system memory.
    func beginMigrationToDevice(departure: () -> Int) -> Bool {
        state.withLock { state in
            guard state.residency == .system else { return false }
            state.residency = .migrating(toDevice: true)
            state.departure = departure()
            return true
        }
    }

    /// `device → migrating(toDevice: false)`, returning the allocation and the departure
    /// position; `nil` otherwise.
    func beginMigrationToSystem() -> (allocation: DeviceAllocation, departure: Int)? {
        state.withLock { state in
            guard case .device(let allocation) = state.residency, let departure = state.departure else { return nil }
            state.residency = .migrating(toDevice: false)
            return (allocation, departure)
        }
    }

    /// Ends a migration to device memory in `device(allocation)` unless `intervened` says
    /// an address-space change touched the range meanwhile; then it stays `migrating` and the
    /// migration must put the data back.
    func commitMigrationToDevice(_ allocation: DeviceAllocation, intervened: (Int) -> Bool) -> Bool {
        state.withLock { state in
            guard let departure = state.departure, !intervened(departure) else { return false }
            state.residency = .device(allocation)
            return true
        }
    }

    /// Ends a migration in system memory; returns the departure position to give back.
    func endMigrationInSystemMemory() -> Int? {
        state.withLock { state in
            defer { state.residency = .system; state.departure = nil }
            return state.departure
        }
    }
}
