import CSVMPlatform
import SVMPluginKit

/// Memory of this process that belongs to the framework or a plugin, not to the program:
/// simulated device memory, bounce buffers, staging blocks. No SVM range is ever made over
/// it, and a device fault on it is answered as on unmapped memory.
///
/// Why: a device may fault on any address the program hands it, including a stray pointer
/// into such memory. Were a range made there, its pages could migrate away, and the owner's
/// next touch of them, made under a lock the handler's `zap` takes (SimDevice's page-table
/// lock around a bounce-buffer copy), would deadlock.
///
/// One registry per process, because the address space is one: plugins declare theirs
/// through the host service `add_private_memory` (ABI 1.5), the framework directly.
public final class PrivateMemory: Sendable {
    /// The process's registry.
    public static let process = PrivateMemory()

    public enum Refusal: Error, Equatable {
        /// Empty, unaligned or wrapping.
        case badInterval
        /// Part of it is not mapped: only memory that exists can be declared, so that a
        /// plugin cannot make addresses the program maps later unreachable for devices.
        case notMapped
        /// Overlaps an interval already declared.
        case overlaps(AddressInterval)
        /// Removal of an interval that was not declared (exactly).
        case notDeclared
    }

    /// The declared intervals, sorted by start and disjoint; protected by its lock, a leaf
    /// (nothing else is taken while it is held).
    private let intervals = Locked<[AddressInterval]>([])

    /// An empty registry (tests; the framework uses ``process``).
    public init() {}

    /// Declares `[address, address + size)`, which must be mapped, private.
    public func add(address: UInt64, size: UInt64) throws(Refusal) {
        let interval = try Self.interval(address: address, size: size)
        guard Self.isMapped(interval) else { throw .notMapped }
        try intervals.withLock { (intervals) throws(Refusal) in
            let index = intervals.partitioningIndex { $0.end > interval.start }
            if index < intervals.count, intervals[index].overlaps(interval) { throw .overlaps(intervals[index]) }
            intervals.insert(interval, at: index)
        }
    }

    /// Withdraws exactly an interval ``add(address:size:)`` declared.
    public func remove(address: UInt64, size: UInt64) throws(Refusal) {
        let interval = try Self.interval(address: address, size: size)
        try intervals.withLock { (intervals) throws(Refusal) in
            guard let index = intervals.firstIndex(of: interval) else { throw .notDeclared }
            intervals.remove(at: index)
        }
    }

    /// Whether `address` is private memory.
    public func contains(_ address: UInt64) -> Bool {
        intervals.withLock { intervals in
            let index = intervals.partitioningIndex { $0.end > address }
            return index < intervals.count && intervals[index].contains(address)
        }
    }

    /// The part of `interval` around `address` (which it contains) that holds no private
    /// memory, or `nil` when `address` itself is private.
    public func programPart(of interval: AddressInterval, around address: UInt64) -> AddressInterval? {
        intervals.withLock { intervals in
            var start = interval.start
            var end = interval.end
            for other in intervals where other.overlaps(interval) {
                if other.contains(address) { return nil }
                if other.end <= address { start = max(start, other.end) } else { end = min(end, other.start) }
            }
            return AddressInterval(start: start, end: end)
        }
    }

    /// The declared intervals, in address order.
    public var declared: [AddressInterval] { intervals.withLock { $0 } }

    /// Whether every page of `interval` is mapped (`mincore` fails with `ENOMEM` otherwise).
    private static func isMapped(_ interval: AddressInterval) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(interval.size / 4096)) { present in
            svm_vma_resident(interval.start, interval.size, present.baseAddress!) == 0
        }
    }

    private static func interval(address: UInt64, size: UInt64) throws(Refusal) -> AddressInterval {
        let page: UInt64 = 4096
        guard size > 0, address % page == 0, size % page == 0, address <= UInt64.max - size else { throw .badInterval }
        return AddressInterval(start: address, end: address + size)
    }
}

extension Array {
    /// The first index whose element satisfies `belongs`, for a predicate that is false
    /// then true along the array (a binary search); `count` when none does.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
