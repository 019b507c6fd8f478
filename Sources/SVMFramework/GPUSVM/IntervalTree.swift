/// Non-overlapping intervals with values, ordered by start: the range tree of a notifier
/// and the notifier tree of an SVM space.
///
/// Kept as a sorted array: lookups are binary searches, and inserts and removals move at
/// most the entries after the position, which for the few thousand ranges a notifier holds
/// is cheaper than a balanced tree's pointer chasing.
///
/// Not synchronized: the owner's lock protects it.
public struct IntervalTree<Value> {
    private var intervals: [AddressInterval] = []
    private var values: [Value] = []

    public init() {}

    public var count: Int { intervals.count }
    public var isEmpty: Bool { intervals.isEmpty }

    /// The index of the first interval whose end is after `address`.
    /// - Complexity: O(log n)
    private func firstEnding(after address: UInt64) -> Int {
        var low = 0
        var high = intervals.count
        while low < high {
            let middle = (low + high) / 2
            if intervals[middle].end <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The interval containing `address`, and its value.
    /// - Complexity: O(log n)
    public func find(containing address: UInt64) -> (interval: AddressInterval, value: Value)? {
        let index = firstEnding(after: address)
        guard index < intervals.count, intervals[index].contains(address) else { return nil }
        return (intervals[index], values[index])
    }

    /// Every interval overlapping `query`, in address order.
    /// - Complexity: O(log n + k) for k results
    public func overlapping(_ query: AddressInterval) -> [(interval: AddressInterval, value: Value)] {
        var result: [(AddressInterval, Value)] = []
        var index = firstEnding(after: query.start)
        while index < intervals.count, intervals[index].start < query.end {
            result.append((intervals[index], values[index]))
            index += 1
        }
        return result
    }

    /// Calls `body` with every interval overlapping `query`, in address order, without
    /// building an array (the invalidation path runs on every migration).
    /// - Complexity: O(log n + k) for k results
    public func forEachOverlapping(_ query: AddressInterval, _ body: (AddressInterval, Value) throws -> Void) rethrows {
        var index = firstEnding(after: query.start)
        while index < intervals.count, intervals[index].start < query.end {
            try body(intervals[index], values[index])
            index += 1
        }
    }

    /// Whether any interval overlaps `query`.
    /// - Complexity: O(log n)
    public func hasOverlap(_ query: AddressInterval) -> Bool {
        let index = firstEnding(after: query.start)
        return index < intervals.count && intervals[index].start < query.end
    }

    /// Inserts `interval`; fails (returns false) when it overlaps an existing one.
    /// - Complexity: O(n) for the move, O(log n) to find the place
    @discardableResult
    public mutating func insert(_ interval: AddressInterval, _ value: Value) -> Bool {
        let index = firstEnding(after: interval.start)
        if index < intervals.count, intervals[index].start < interval.end { return false }
        intervals.insert(interval, at: index)
        values.insert(value, at: index)
        return true
    }

    /// Removes the interval that starts exactly at `interval.start` and ends at its end.
    /// - Complexity: O(n)
    @discardableResult
    public mutating func remove(_ interval: AddressInterval) -> Value? {
        let index = firstEnding(after: interval.start)
        guard index < intervals.count, intervals[index] == interval else { return nil }
        intervals.remove(at: index)
        return values.remove(at: index)
    }

    /// All intervals in address order.
    public var all: [(interval: AddressInterval, value: Value)] {
        Array(zip(intervals, values)).map { ($0, $1) }
    }
}

extension IntervalTree: Sendable where Value: Sendable {}
