import Synchronization

/// The sequence number of a notifier: every invalidation of its interval bumps it, and a
/// device commits page-table entries only if the number it read before collecting pages is
/// still current (`mmu_interval_read_begin` / `mmu_interval_read_retry`).
public final class NotifierSequence: Sendable {
    private let value = Atomic<UInt64>(0)

    public init() {}

    /// The number to compare against later.
    public func readBegin() -> UInt64 { value.load(ordering: .acquiring) }

    /// Whether an invalidation happened since `readBegin()` returned `sequence`: the caller
    /// must drop what it collected and start again.
    public func needsRetry(_ sequence: UInt64) -> Bool {
        value.load(ordering: .acquiring) != sequence
    }

    /// Marks the interval invalidated. Called with the notifier lock held for writing (see
    /// ``invalidateLocked(under:)``); on its own only by tests of the retry loop.
    public func invalidate() { value.add(1, ordering: .acquiringAndReleasing) }

    /// ``invalidate()`` by an invalidation, which holds `lock` for writing.
    public func invalidateLocked(under lock: NotifierLock) {
        lock.assertHeld(.write)
        invalidate()
    }
}

/// Runs `attempt` until it completes under an unchanged sequence number, or `timeout` runs
/// out: the seq/retry loop, written once.
///
/// `attempt` receives the sequence number read at its start and returns `nil` when it found,
/// at its commit point, that the number changed.
public func withSequenceRetry<Result>(
    _ sequence: NotifierSequence, timeout: Duration,
    _ attempt: (UInt64) throws -> Result?
) throws -> Result {
    try withSequenceRetry(timeout: timeout) { try attempt(sequence.readBegin()) }
}

/// The seq/retry loop for an attempt that finds its notifier itself (a fault looks the range
/// up first): runs `attempt` until it returns a result, or `timeout` runs out. `attempt`
/// reads the sequence number of the notifier it found (``NotifierSequence/readBegin()``)
/// and returns `nil` when, at its commit point, the number changed, or when what it
/// depends on is not ready yet.
///
/// - Throws: what `attempt` throws, or ``SequenceRetryTimeout``.
public func withSequenceRetry<Result>(timeout: Duration, _ attempt: () throws -> Result?) throws -> Result {
    try withSequenceRetry(until: .now + timeout, timeout: timeout, attempt)
}

/// ``withSequenceRetry(timeout:_:)`` for a caller that has read the clock already (a fault
/// reads it once, when it starts): `deadline` is when `timeout` runs out.
func withSequenceRetry<Result>(
    until deadline: ContinuousClock.Instant, timeout: Duration, _ attempt: () throws -> Result?
) throws -> Result {
    var attempts = 0
    while true {
        attempts += 1
        if let result = try attempt() { return result }
        if ContinuousClock.now >= deadline { throw SequenceRetryTimeout(attempts: attempts, timeout: timeout) }
    }
}

/// The seq/retry loop gave up: the interval kept being invalidated.
public struct SequenceRetryTimeout: Error, Hashable, CustomStringConvertible {
    public let attempts: Int
    public let timeout: Duration

    public var description: String {
        "gave up after \(attempts) attempts in \(timeout): the range kept being invalidated"
    }
}
