/// Non-overlapping intervals with values, ordered by start: the range tree of a notifier
/// and the notifier tree of an SVM space.
///
/// Kept as sorted blocks of at most ``defaultBlockCapacity`` intervals, with the end of each
/// block's last interval in an index beside them: a lookup is two binary searches, and an
/// insert or removal moves the entries of one block (and, when a block splits or empties, the
/// index). One sorted array was cheaper for a few thousand ranges, but a 512 MiB notifier
/// holds up to 131,072 ranges of 4 KiB: at 32,768 the array's insert moved 768 KiB per fault
/// and a 4 KiB device fault took three times as long as with an empty notifier (measured with
/// `svm-cli bench fault --chunk 4K --comparisons 64`).
///
/// Not synchronized: the owner's lock protects it.
public struct IntervalTree<Value> {
    /// One block: intervals in address order and their values, index for index.
    fileprivate struct Block {
        var intervals: [AddressInterval]
        var values: [Value]
        var count: Int { intervals.count }
        /// The end of the last interval (blocks are never empty).
        var end: UInt64 { intervals[intervals.count - 1].end }
    }

    /// Where an interval is: its block and its index in the block.
    private struct Position {
        var block: Int
        var index: Int
    }

    private var blocks: [Block] = []
    /// `blockEnds[b]` is the end of block `b`'s last interval. Blocks are never empty.
    private var blockEnds: [UInt64] = []
    /// The most intervals a block holds before it splits in two.
    private let blockCapacity: Int
    public private(set) var count = 0

    /// Intervals per block: moving 256 entries (6 KiB of intervals, 2 KiB of values) in a
    /// block costs about what the binary searches around it cost, and the index stays 512
    /// entries for the 131,072 4 KiB ranges of a full 512 MiB notifier.
    public static var defaultBlockCapacity: Int { 256 }

    public init() { self.init(blockCapacity: Self.defaultBlockCapacity) }

    /// A tree whose blocks split above `blockCapacity` intervals (small ones in tests, so
    /// that splits and merges happen).
    init(blockCapacity: Int) {
        precondition(blockCapacity >= 2, "an interval tree block holds at least two intervals")
        self.blockCapacity = blockCapacity
    }

    public var isEmpty: Bool { count == 0 }

    /// How many blocks hold the intervals (for tests of the layout).
    var blockCount: Int { blocks.count }
    /// The most intervals any block holds (for tests of the layout).
    var largestBlock: Int { blocks.map(\.count).max() ?? 0 }

    /// The first interval whose end is after `address`; the block is `blocks.count` if none.
    /// - Complexity: O(log n)
    private func firstEnding(after address: UInt64) -> Position {
        var low = 0
        var high = blockEnds.count
        while low < high {
            let middle = (low + high) / 2
            if blockEnds[middle] <= address { low = middle + 1 } else { high = middle }
        }
        guard low < blocks.count else { return Position(block: low, index: 0) }
        return blocks[low].intervals.withUnsafeBufferPointer { intervals in
            var first = 0
            var last = intervals.count
            while first < last {
                let middle = (first + last) / 2
                if intervals[middle].end <= address { first = middle + 1 } else { last = middle }
            }
            return Position(block: low, index: first)
        }
    }

    /// The interval at `position`, if there is one.
    private func interval(at position: Position) -> AddressInterval? {
        position.block < blocks.count ? blocks[position.block].intervals[position.index] : nil
    }

    /// The interval containing `address`, and its value.
    /// - Complexity: O(log n)
    public func find(containing address: UInt64) -> (interval: AddressInterval, value: Value)? {
        let position = firstEnding(after: address)
        guard let found = interval(at: position), found.contains(address) else { return nil }
        return (found, blocks[position.block].values[position.index])
    }

    /// Every interval overlapping `query`, in address order.
    /// - Complexity: O(log n + k) for k results
    public func overlapping(_ query: AddressInterval) -> [(interval: AddressInterval, value: Value)] {
        var result: [(interval: AddressInterval, value: Value)] = []
        forEachOverlapping(query) { result.append(($0, $1)) }
        return result
    }

    /// Calls `body` with every interval overlapping `query`, in address order, without
    /// building an array (the invalidation path runs on every migration).
    /// - Complexity: O(log n + k) for k results
    public func forEachOverlapping(_ query: AddressInterval, _ body: (AddressInterval, Value) throws -> Void) rethrows {
        var position = firstEnding(after: query.start)
        while position.block < blocks.count {
            while position.index < blocks[position.block].count {
                let interval = blocks[position.block].intervals[position.index]
                guard interval.start < query.end else { return }
                try body(interval, blocks[position.block].values[position.index])
                position.index += 1
            }
            position = Position(block: position.block + 1, index: 0)
        }
    }

    /// Whether any interval overlaps `query`.
    /// - Complexity: O(log n)
    public func hasOverlap(_ query: AddressInterval) -> Bool {
        guard let next = interval(at: firstEnding(after: query.start)) else { return false }
        return next.start < query.end
    }

    /// Inserts `interval`; fails (returns false) when it overlaps an existing one.
    /// - Complexity: O(log n + B) for blocks of B, and O(n / B) when a block splits
    @discardableResult
    public mutating func insert(_ interval: AddressInterval, _ value: Value) -> Bool {
        var position = firstEnding(after: interval.start)
        if let next = self.interval(at: position), next.start < interval.end { return false }
        if blocks.isEmpty {
            blocks.append(Block(intervals: [interval], values: [value]))
            blockEnds.append(interval.end)
            count = 1
            return true
        }
        if position.block == blocks.count {
            // After every interval: the end of the last block.
            position = Position(block: blocks.count - 1, index: blocks[blocks.count - 1].count)
        }
        let block = position.block
        blocks[block].intervals.insert(interval, at: position.index)
        blocks[block].values.insert(value, at: position.index)
        blockEnds[block] = blocks[block].end
        count += 1
        if blocks[block].count > blockCapacity { split(block) }
        return true
    }

    /// Removes the interval that starts exactly at `interval.start` and ends at its end.
    /// - Complexity: O(log n + B) for blocks of B, and O(n / B) when a block empties or merges
    @discardableResult
    public mutating func remove(_ interval: AddressInterval) -> Value? {
        let position = firstEnding(after: interval.start)
        guard self.interval(at: position) == interval else { return nil }
        let block = position.block
        blocks[block].intervals.remove(at: position.index)
        let value = blocks[block].values.remove(at: position.index)
        count -= 1
        if blocks[block].count == 0 {
            blocks.remove(at: block)
            blockEnds.remove(at: block)
        } else {
            blockEnds[block] = blocks[block].end
            mergeIfSparse(block)
        }
        return value
    }

    /// Splits block `block` into two halves.
    private mutating func split(_ block: Int) {
        let half = blocks[block].count / 2
        let upper = Block(
            intervals: Array(blocks[block].intervals[half...]), values: Array(blocks[block].values[half...]))
        blocks[block].intervals.removeSubrange(half...)
        blocks[block].values.removeSubrange(half...)
        blocks.insert(upper, at: block + 1)
        blockEnds[block] = blocks[block].end
        blockEnds.insert(upper.end, at: block + 1)
    }

    /// Merges block `block` into its successor, or its predecessor into it, when it has
    /// fallen below a quarter of the capacity and the two fit in one block: removals leave
    /// at most about four times as many blocks as the intervals need.
    private mutating func mergeIfSparse(_ block: Int) {
        guard blocks[block].count < blockCapacity / 4 else { return }
        let lower: Int
        if block + 1 < blocks.count, blocks[block].count + blocks[block + 1].count <= blockCapacity {
            lower = block
        } else if block > 0, blocks[block - 1].count + blocks[block].count <= blockCapacity {
            lower = block - 1
        } else {
            return
        }
        let upper = blocks.remove(at: lower + 1)
        blocks[lower].intervals.append(contentsOf: upper.intervals)
        blocks[lower].values.append(contentsOf: upper.values)
        blockEnds.remove(at: lower)
    }

    /// All intervals in address order.
    public var all: [(interval: AddressInterval, value: Value)] {
        var result: [(interval: AddressInterval, value: Value)] = []
        result.reserveCapacity(count)
        for block in blocks {
            for (interval, value) in zip(block.intervals, block.values) { result.append((interval, value)) }
        }
        return result
    }
}

extension IntervalTree: Sendable where Value: Sendable {}
extension IntervalTree.Block: Sendable where Value: Sendable {}
