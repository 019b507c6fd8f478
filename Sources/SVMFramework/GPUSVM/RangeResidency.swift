import SVMPluginKit
import Synchronization

/// Where the data of a range lives, and the migrations that move it (the MM-level state
/// `drm_gpusvm` keeps in the CPU page tables as device-private entries and migration
/// entries).
///
/// Transitions only through ``RangeResidency``: `system → migrating(system → device) →
/// device` (to device memory), `device → migrating(device → system) → system` (eviction,
/// CPU fault), `device(A) → migrating(A → B) → device(B)` (device to device), and
/// `migrating → system` (a migration given up). Whoever moves a range to `migrating` owns
/// the data until it leaves that state; every other party waits or defers.
public enum Residency: Sendable, Equatable {
    /// The data is in the CPU pages at the range's addresses (or nowhere yet: zero).
    case system
    /// The data is in device memory; the CPU pages are holes that fault.
    case device(DeviceAllocation)
    /// A migration owns the data, taking it from one location to another.
    case migrating(from: MemoryLocation, to: MemoryLocation)

    /// Where the data is at rest; `nil` while a migration owns it.
    public var location: MemoryLocation? {
        switch self {
        case .system: .system
        case .device(let allocation): .device(allocation.pagemap)
        case .migrating: nil
        }
    }
}

/// The residency of one range with its transitions, each atomic under one small lock.
/// Never held while memory is touched or a plugin is called; the only system calls under
/// it are the non-blocking zero fills of ``whileInSystemMemory(_:)``.
public final class RangeResidency: Sendable {
    private struct State {
        var residency: Residency = .system
        /// While the data is away from the CPU pages: the position in the mirror's
        /// address-space log when it left them.
        var departure: Int?
    }

    /// Protects the residency and the departure: every read and transition is one critical
    /// section.
    private let state = Locked(State())
    /// Signalled when a migration ends (committed or given up), for parties waiting on it.
    private let settled = ChangeSignal()

    public init() {}

    /// The device whose fault has the range reserved (0: none): a fault that keeps losing the
    /// range to other devices' migrations reserves it, and other devices' faults wait until
    /// it has committed or given up (see `DeviceFaultPath`). Its own atomic, not under the
    /// state lock: only faults read it, and a stale read costs one more pass.
    private let reservation = Atomic<UInt64>(0)

    /// Reserves the range for device `deviceID`'s fault; false if another device's fault
    /// has it.
    func reserve(for deviceID: UInt64) -> Bool {
        let (exchanged, holder) = reservation.compareExchange(expected: 0, desired: deviceID, ordering: .acquiringAndReleasing)
        return exchanged || holder == deviceID
    }

    /// Gives up device `deviceID`'s reservation, waking the faults waiting on it.
    func releaseReservation(for deviceID: UInt64) {
        if reservation.compareExchange(expected: deviceID, desired: 0, ordering: .acquiringAndReleasing).exchanged { settled.signal() }
    }

    /// Whether a device other than `deviceID` has the range reserved.
    func isReserved(forAnotherThan deviceID: UInt64) -> Bool {
        let holder = reservation.load(ordering: .acquiring)
        return holder != 0 && holder != deviceID
    }

    /// Waits until no other device has the range reserved, at most `timeout`.
    func waitWhileReserved(forAnotherThan deviceID: UInt64, timeout: Duration) {
        let generation = settled.generation
        guard isReserved(forAnotherThan: deviceID) else { return }
        settled.wait(whileAt: generation, timeout: timeout)
    }

    /// Waits until no migration owns the data, at most `timeout` (the caller looks again:
    /// the next migration may have started meanwhile).
    func waitWhileMigrating(timeout: Duration) {
        let generation = settled.generation
        guard case .migrating = current else { return }
        settled.wait(whileAt: generation, timeout: timeout)
    }

    public var current: Residency { state.withLock { $0.residency } }

    /// Whether the range is at `residency` now: ``current`` `==` without the copy of the
    /// residency out of the lock, case by case (the derived `==` copied both sides through
    /// the enum's generic layout: 1,400 instructions on every commit).
    public func isCurrently(_ residency: Residency) -> Bool {
        state.withLock { state in
            switch residency {
            case .system:
                if case .system = state.residency { return true }
            case .device(let allocation):
                if case .device(let current) = state.residency { return current == allocation }
            case .migrating(let from, let to):
                if case .migrating(let currentFrom, let currentTo) = state.residency { return currentFrom == from && currentTo == to }
            }
            return false
        }
    }

    /// Whether the data is in system memory at rest now.
    public var isInSystemMemory: Bool {
        state.withLock { if case .system = $0.residency { true } else { false } }
    }

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

    /// Claims the data for a migration to `destination` (a device): from system memory,
    /// taking it away at log position `departure()` (called under the lock, so that no
    /// change slips in between), or from another device's memory, which keeps the position
    /// its data left the CPU pages at. Returns where the data was: `.system`, or the
    /// allocation it occupies; `nil` when another party owns it or it is there already.
    func beginMigration(to destination: SVMPagemap, departure: () -> Int) -> Residency? {
        state.withLock { state in
            switch state.residency {
            case .system:
                state.residency = .migrating(from: .system, to: .device(destination))
                state.departure = departure()
                return .system
            case .device(let allocation) where allocation.pagemap !== destination:
                state.residency = .migrating(from: .device(allocation.pagemap), to: .device(destination))
                return .device(allocation)
            case .device, .migrating:
                return nil
            }
        }
    }

    /// `device → migrating(device → system)`, returning the allocation and the departure
    /// position; `nil` otherwise.
    func beginMigrationToSystem() -> (allocation: DeviceAllocation, departure: Int)? {
        state.withLock { state in
            guard case .device(let allocation) = state.residency, let departure = state.departure else { return nil }
            state.residency = .migrating(from: .device(allocation.pagemap), to: .system)
            return (allocation, departure)
        }
    }

    /// Ends a migration to device memory in `device(allocation)` unless `intervened` says
    /// an address-space change touched the range meanwhile; then it stays `migrating` and the
    /// migration must put the data back.
    func commitMigrationToDevice(_ allocation: DeviceAllocation, intervened: (Int) -> Bool) -> Bool {
        let committed = state.withLock { state in
            guard let departure = state.departure, !intervened(departure) else { return false }
            state.residency = .device(allocation)
            return true
        }
        if committed { settled.signal() }
        return committed
    }

    /// Ends a migration in system memory; returns the departure position to give back.
    func endMigrationInSystemMemory() -> Int? {
        defer { settled.signal() }
        return state.withLock { state in
            defer { state.residency = .system; state.departure = nil }
            return state.departure
        }
    }
}
