import Synchronization

/// The host's simulated time, in nanoseconds, which plugins read through the
/// `clock_now_ns` host service. It only moves forward.
public final class SimulationClock: Sendable {
    private let nanoseconds: Atomic<UInt64>

    public init(start: UInt64 = 0) { nanoseconds = Atomic(start) }

    /// The current simulated time.
    public var now: UInt64 { nanoseconds.load(ordering: .acquiring) }

    /// Moves the clock to `time` if that is later than now; returns the resulting time.
    @discardableResult
    public func advance(to time: UInt64) -> UInt64 {
        var current = nanoseconds.load(ordering: .relaxed)
        while current < time {
            let (exchanged, original) = nanoseconds.compareExchange(
                expected: current, desired: time, ordering: .acquiringAndReleasing)
            if exchanged { return time }
            current = original
        }
        return current
    }
}
