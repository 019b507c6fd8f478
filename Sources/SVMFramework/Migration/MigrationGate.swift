import CSVMPlatform
import SVMPluginKit
import Synchronization

/// The migrations under way, and the way into device memory, which a `fork` closes: while
/// it is closed, migrations to a device wait at the gate, so that the data can all come home
/// and stay there until the child has its copy of the address space (see
/// `ForkPreparation.swift`).
///
/// Every migration, in either direction, is listed while it runs, with its range, thread and
/// start: its range's pages are holes then, and a fork in that moment would give the child
/// holes where data is; and a migration that takes too long is what the context's watchdog
/// reports (see `StallWatchdog.swift`). Migrations to system memory never wait (the mirror's
/// handler thread runs them).
final class MigrationGate: Sendable {
    /// A migration under way.
    struct Passage: Sendable, Hashable {
        var interval: AddressInterval
        /// The device it goes to; `nil`: system memory.
        var destination: UInt64?
        /// The kernel id of the thread running it.
        var thread: Int32
        /// When it started, in ``monotonicNanoseconds()`` (not a `ContinuousClock.Instant`,
        /// whose hidden layout made every passage a runtime-copied value).
        var startedNanoseconds: Int64

        /// Its direction, in words ("to device 1", "to system memory"), for reports.
        var direction: String { destination.map { "to device \($0)" } ?? "to system memory" }
    }

    private struct State {
        /// How many forks have the gate closed (forks on several threads at once).
        var closers = 0
        /// Migrations under way, by ticket.
        var inFlight = AddressTable<Passage>()
        var nextTicket: UInt64 = 0

        mutating func admit(_ interval: AddressInterval, to destination: UInt64?) -> UInt64 {
            nextTicket += 1
            inFlight[nextTicket] = Passage(interval: interval, destination: destination, thread: svm_thread_id(), startedNanoseconds: monotonicNanoseconds())
            return nextTicket
        }
    }

    private let state = Locked(State())
    /// Signalled when the gate opens or a migration ends.
    private let changed = ChangeSignal()
    /// How long a waiter sleeps before it looks again (a signal wakes it sooner): a bound
    /// in case a wake is missed, not a poll interval.
    private static let recheck: Duration = .milliseconds(1)

    /// Enters for a migration of `interval` to device memory, waiting while the gate is
    /// closed, at most `patience`. Returns the ticket to give ``leave(_:)``, or `nil` when
    /// that passed. The clock is read only when the gate is closed.
    func enterTowardDevice(_ interval: AddressInterval, device: UInt64, patience: Duration) -> UInt64? {
        var deadline: ContinuousClock.Instant?
        while true {
            let generation = changed.generation
            let ticket = state.withLock { state -> UInt64? in
                guard state.closers == 0 else { return nil }
                return state.admit(interval, to: device)
            }
            if let ticket { return ticket }
            let now = ContinuousClock.now
            let limit = deadline ?? now + patience
            deadline = limit
            guard now < limit else { return nil }
            changed.wait(whileAt: generation, timeout: Self.recheck)
        }
    }

    /// Enters for a migration to system memory: never waits. Balance with ``leave(_:)``.
    func enterTowardSystem(_ interval: AddressInterval) -> UInt64 {
        state.withLock { $0.admit(interval, to: nil) }
    }

    func leave(_ ticket: UInt64) {
        state.withLock { _ = $0.inFlight.removeValue(forKey: ticket) }
        changed.signal()
    }

    /// The migrations under way that started before `nanoseconds` (``monotonicNanoseconds()``),
    /// oldest first.
    func startedBefore(nanoseconds: Int64) -> [Passage] {
        state.withLock { $0.inFlight.values.filter { $0.startedNanoseconds < nanoseconds } }.sorted { $0.startedNanoseconds < $1.startedNanoseconds }
    }

    /// Closes the gate: migrations to device memory wait from now on.
    func close() {
        state.withLock { $0.closers += 1 }
    }

    /// Opens the gate again (one ``close()`` each).
    func open() {
        state.withLock { $0.closers -= 1 }
        changed.signal()
    }

    /// Waits until no migration is under way.
    func waitUntilNoneInFlight() {
        while true {
            let generation = changed.generation
            if state.withLock({ $0.inFlight.isEmpty }) { return }
            changed.wait(whileAt: generation, timeout: Self.recheck)
        }
    }
}
