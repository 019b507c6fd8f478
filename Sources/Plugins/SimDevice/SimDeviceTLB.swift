import SVMPluginKit
import Synchronization

/// A simulated device's TLB: a fully associative cache of page-table leaves (4K, 64K or
/// 2M) with least-recently-used replacement, as GPGPU-Sim UVMSmart models it. It only
/// counts: a miss costs a page-table walk in simulated time, and a zap empties the entries
/// it covers (the TLB flush that follows a page-table update).
///
/// Shared by the kernels running on the device; every call takes its mutex.
final class SimDeviceTLB: Sendable {
    let capacity: Int
    private let state: Locked<State>

    init(entries: Int) {
        precondition(entries > 0)
        capacity = entries
        state = Locked(State(capacity: entries))
    }

    /// Looks up the leaf `[start, start + size)`, filling it on a miss. True on a hit.
    func lookUp(leafStart start: UInt64, size: UInt64) -> Bool {
        state.withLock { $0.lookUp(Key(start: start, size: size)) }
    }

    /// Drops every entry that overlaps `range`.
    func invalidate(_ range: Range<UInt64>) {
        state.withLock { $0.invalidate(range) }
    }

    private struct Key: Hashable {
        let start: UInt64
        let size: UInt64
    }

    /// The entries in a doubly linked list in recency order (head: most recent), with an
    /// index from key to slot: O(1) lookup, fill and eviction.
    private struct State: ~Copyable {
        struct Slot {
            var key: Key
            var previous: Int
            var next: Int
        }

        let capacity: Int
        var slots: [Slot] = []
        var index: [Key: Int] = [:]
        var free: [Int] = []
        var head = -1
        var tail = -1

        init(capacity: Int) { self.capacity = capacity }

        mutating func lookUp(_ key: Key) -> Bool {
            if let slot = index[key] {
                unlink(slot)
                pushFront(slot)
                return true
            }
            let slot: Int
            if let reused = free.popLast() {
                slot = reused
                slots[slot].key = key
            } else if slots.count < capacity {
                slot = slots.count
                slots.append(Slot(key: key, previous: -1, next: -1))
            } else {
                slot = tail
                index.removeValue(forKey: slots[slot].key)
                unlink(slot)
                slots[slot].key = key
            }
            index[key] = slot
            pushFront(slot)
            return false
        }

        mutating func invalidate(_ range: Range<UInt64>) {
            for (key, slot) in index where key.start < range.upperBound && range.lowerBound < key.start + key.size {
                index.removeValue(forKey: key)
                unlink(slot)
                free.append(slot)
            }
        }

        private mutating func unlink(_ slot: Int) {
            let (previous, next) = (slots[slot].previous, slots[slot].next)
            if previous >= 0 { slots[previous].next = next } else { head = next }
            if next >= 0 { slots[next].previous = previous } else { tail = previous }
        }

        private mutating func pushFront(_ slot: Int) {
            slots[slot].previous = -1
            slots[slot].next = head
            if head >= 0 { slots[head].previous = slot }
            head = slot
            if tail < 0 { tail = slot }
        }
    }
}
