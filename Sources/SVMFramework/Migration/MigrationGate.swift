import Synchronization

/// The way into device memory, which a `fork` closes: while it is closed, migrations to a
/// device wait at the gate, so that the data can all come home and stay there until the
/// child has its copy of the address space (see `ForkPreparation.swift`).
///
/// Every migration, in either direction, is counted while it runs: its range's pages are
/// holes then, and a fork in that moment would give the child holes where data is.
/// Migrations to system memory never wait (the mirror's handler thread runs them).
final class MigrationGate: Sendable {
    private struct State {
        /// How many forks have the gate closed (forks on several threads at once).
        var closers = 0
        /// Migrations under way.
        var inFlight = 0
    }

    private let state = Mutex(State())
    /// Signalled when the gate opens or a migration ends.
    private let changed = ChangeSignal()
    /// How long a waiter sleeps before it looks again (a signal wakes it sooner): a bound
    /// in case a wake is missed, not a poll interval.
    private static let recheck: Duration = .milliseconds(1)

    /// Enters for a migration to device memory, waiting while the gate is closed. Balance
    /// with ``leave()``.
    func enterTowardDevice() {
        while true {
            let generation = changed.generation
            let entered = state.withLock { state in
                guard state.closers == 0 else { return false }
                state.inFlight += 1
                return true
            }
            if entered { return }
            changed.wait(whileAt: generation, timeout: Self.recheck)
        }
    }

    /// Enters for a migration to system memory: never waits. Balance with ``leave()``.
    func enterTowardSystem() {
        state.withLock { $0.inFlight += 1 }
    }

    func leave() {
        state.withLock { $0.inFlight -= 1 }
        changed.signal()
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
            if state.withLock({ $0.inFlight }) == 0 { return }
            changed.wait(whileAt: generation, timeout: Self.recheck)
        }
    }
}
