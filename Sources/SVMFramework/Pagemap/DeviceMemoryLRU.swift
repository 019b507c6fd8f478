import SVMPluginKit
import Synchronization

/// The ranges resident in one device's memory, least recently used first: eviction under
/// memory pressure takes the oldest (the kernel keeps device memory on an LRU as well).
final class DeviceMemoryLRU: Sendable {
    private struct Entry {
        let range: SVMRange
        var lastUse: UInt64
    }
    /// Protected by the mutex; a use tick per entry, so eviction scans for the minimum.
    private let entries = Locked<(tick: UInt64, byRange: [ObjectIdentifier: Entry])>((0, [:]))

    /// Marks `range` used now (inserting it).
    func touch(_ range: SVMRange) {
        entries.withLock { state in
            state.tick += 1
            state.byRange[ObjectIdentifier(range), default: Entry(range: range, lastUse: 0)].lastUse = state.tick
        }
    }

    func remove(_ range: SVMRange) {
        _ = entries.withLock { $0.byRange.removeValue(forKey: ObjectIdentifier(range)) }
    }

    /// The least recently used ranges, oldest first, except `sparing`.
    /// - Complexity: O(*n* log *n*).
    func leastRecentlyUsed(sparing: SVMRange?) -> [SVMRange] {
        entries.withLock { state in
            state.byRange.values.filter { $0.range !== sparing }.sorted { $0.lastUse < $1.lastUse }.map(\.range)
        }
    }

    /// All resident ranges.
    var ranges: [SVMRange] { entries.withLock { $0.byRange.values.map(\.range) } }
}
