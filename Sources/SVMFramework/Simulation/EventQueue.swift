import HeapModule

/// The discrete-event scheduler of simulated time: actions run in the order of their
/// simulated time, and actions due at the same time run in the order they were scheduled.
/// That tie rule, and running every action on the one thread that drives the experiment,
/// is what makes two runs of the same experiment give the same timeline.
///
/// Not thread-safe: an experiment's timeline belongs to its driving thread.
public final class EventQueue {
    /// Simulated nanoseconds; moves forward only, to the time of the action running.
    public private(set) var now: UInt64 = 0

    private struct Entry: Comparable {
        let time: UInt64
        /// Tie-breaker: the order of scheduling.
        let order: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.time, a.order) < (b.time, b.order) }
        static func == (a: Entry, b: Entry) -> Bool { (a.time, a.order) == (b.time, b.order) }
    }

    private var heap = Heap<Entry>()
    private var actions: [UInt64: () -> Void] = [:]
    private var nextOrder: UInt64 = 0

    public init(start: UInt64 = 0) { now = start }

    /// Runs `action` at simulated `time` (not before now).
    /// - Complexity: O(log n).
    public func schedule(at time: UInt64, _ action: @escaping () -> Void) {
        precondition(time >= now, "an event scheduled in the past (\(time) < \(now))")
        let entry = Entry(time: time, order: nextOrder)
        nextOrder += 1
        actions[entry.order] = action
        heap.insert(entry)
    }

    /// Runs `action` `delay` nanoseconds from now.
    public func schedule(after delay: UInt64, _ action: @escaping () -> Void) {
        schedule(at: now + delay, action)
    }

    /// Runs actions in order until none is left or `stop` says so (checked before each).
    public func run(until stop: () -> Bool = { false }) {
        while !stop(), let entry = heap.popMin() {
            now = entry.time
            actions.removeValue(forKey: entry.order)?()
        }
    }
}
