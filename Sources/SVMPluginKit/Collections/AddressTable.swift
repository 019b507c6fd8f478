/// A hash table keyed by `UInt64` addresses, offsets or identifiers: the dictionary of the
/// fault path (page-table directories, device-memory blocks, migrations in flight, free
/// blocks of the buddy allocator).
///
/// Why not `Dictionary`: every `Dictionary` operation hashes its key with SipHash, about 100
/// instructions, and a device fault with its migrate-back made some 20 such operations. This
/// table hashes by one multiplication (Fibonacci hashing, Knuth, *TAOCP* vol. 3 §6.4: the
/// top bits of `key × 2^64/φ`), which spreads page-aligned addresses, whose low bits are all
/// zero, as well as consecutive integers. It is not hardened against chosen keys, which is
/// fine for keys the framework and its plugins make themselves.
///
/// Open addressing with linear probing in a power-of-two array, at most 3/4 full (a probe
/// then looks at 2.5 slots on average for a hit, Knuth's estimate); removal shifts the
/// entries that follow back (no tombstones, so lookups never slow down with churn). An empty
/// table allocates nothing. Iteration order is that of the slots: deterministic for the same
/// operations, but otherwise unspecified, as `Dictionary`'s is.
///
/// A value type with copy-on-write storage, like `Dictionary`; not synchronized.
public struct AddressTable<Value> {
    @usableFromInline struct Entry {
        @usableFromInline var key: UInt64
        @usableFromInline var value: Value

        @inlinable init(key: UInt64, value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// The slots, `nil` when free; a power of two of them, or none.
    @usableFromInline var slots: ContiguousArray<Entry?> = []
    /// 64 − log2(the number of slots): how far the product is shifted to give a slot; set
    /// wherever `slots` is replaced (a property observer would copy the array on every
    /// store into it).
    @usableFromInline var shift: UInt64 = 64
    /// The entries held. (Settable inside the module: the inlinable mutations set it.)
    @usableFromInline var entryCount = 0

    /// The entries held.
    @inlinable public var count: Int { entryCount }

    /// The smallest non-empty table: 8 slots.
    @usableFromInline static var minimumSlots: Int { 8 }

    /// An empty table, with room for `minimumCapacity` entries before it grows.
    @inlinable
    public init(minimumCapacity: Int = 0) {
        if minimumCapacity > 0 { replaceSlots(count: Self.slotCount(for: minimumCapacity)) }
    }

    @inlinable public var isEmpty: Bool { entryCount == 0 }

    /// The value for `key`, or `nil`; setting `nil` removes the entry.
    ///
    /// - Complexity: O(1) on average.
    @inlinable
    public subscript(key: UInt64) -> Value? {
        get {
            guard let slot = find(key) else { return nil }
            return slots[slot].unsafelyUnwrapped.value
        }
        set {
            if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// The value for `key`, or `defaultValue()` inserted first when a mutation needs one
    /// (as `Dictionary`'s subscript of the same name).
    @inlinable
    public subscript(key: UInt64, default defaultValue: @autoclosure () -> Value) -> Value {
        get { self[key] ?? defaultValue() }
        _modify {
            let (slot, found) = slotForInsert(key)
            if !found { place(key: key, value: defaultValue(), at: slot) }
            yield &slots[slot]!.value
        }
    }

    /// Runs `body` on the value for `key` where it lies, and returns what `body` returns;
    /// `nil`, without calling `body`, when there is no entry. In place: a value that holds an
    /// array can change it without the copy a value taken out and put back would make.
    @inlinable
    public mutating func modifyValue<Result>(forKey key: UInt64, _ body: (inout Value) throws -> Result) rethrows -> Result? {
        guard let slot = find(key) else { return nil }
        return try body(&slots[slot]!.value)
    }

    /// Whether an entry for `key` exists.
    @inlinable
    public func contains(_ key: UInt64) -> Bool { find(key) != nil }

    /// Sets the value for `key`; returns the value it replaced, if any.
    @inlinable
    @discardableResult
    public mutating func updateValue(_ value: Value, forKey key: UInt64) -> Value? {
        let (slot, found) = slotForInsert(key)
        guard found else {
            place(key: key, value: value, at: slot)
            return nil
        }
        let old = slots[slot].unsafelyUnwrapped.value
        slots[slot]!.value = value
        return old
    }

    /// Removes the entry for `key`; returns its value, if there was one.
    ///
    /// - Complexity: O(1) on average.
    @inlinable
    @discardableResult
    public mutating func removeValue(forKey key: UInt64) -> Value? {
        guard var hole = find(key) else { return nil }
        let removed = slots[hole].unsafelyUnwrapped.value
        // Backward shift: an entry after the hole moves into it unless its home slot lies
        // cyclically after the hole (then the hole does not break its probe sequence).
        let mask = slots.count - 1
        var next = (hole + 1) & mask
        while let entry = slots[next] {
            let homeSlot = home(entry.key)
            if (next - homeSlot) & mask >= (next - hole) & mask {
                slots[hole] = entry
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = nil
        entryCount -= 1
        return removed
    }

    /// Removes every entry (keeping the storage if asked to).
    public mutating func removeAll(keepingCapacity: Bool = false) {
        if keepingCapacity {
            for index in slots.indices { slots[index] = nil }
        } else {
            replaceSlots(count: 0)
        }
        entryCount = 0
    }

    /// The keys, in slot order.
    public var keys: [UInt64] { slots.compactMap { $0?.key } }

    /// The values, in slot order.
    public var values: [Value] { slots.compactMap { $0?.value } }

    // MARK: - Internals

    /// The home slot of `key`: the top bits of its product with 2^64/φ.
    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    /// Makes `count` free slots (a power of two, or 0), dropping the old ones.
    @usableFromInline
    mutating func replaceSlots(count: Int) {
        slots = ContiguousArray(repeating: nil, count: count)
        shift = UInt64(64 - count.trailingZeroBitCount)
    }

    /// The slots for `capacity` entries at most 3/4 full.
    @inlinable
    static func slotCount(for capacity: Int) -> Int {
        var slots = minimumSlots
        while slots / 4 * 3 < capacity { slots *= 2 }
        return slots
    }

    /// The slot holding `key`, or `nil`.
    @inlinable
    func find(_ key: UInt64) -> Int? {
        guard entryCount > 0 else { return nil }
        let mask = slots.count - 1
        var slot = home(key)
        while let entry = slots[slot] {
            if entry.key == key { return slot }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// The slot holding `key` (`found`), or the free slot where it goes, in one probe. The
    /// table grows first when an insert would make it over 3/4 full, but only for a key that
    /// is not there.
    @inlinable
    mutating func slotForInsert(_ key: UInt64) -> (slot: Int, found: Bool) {
        if entryCount + 1 > slots.count / 4 * 3 {
            if let slot = find(key) { return (slot, true) }
            grow()
        }
        let mask = slots.count - 1
        var slot = home(key)
        while let entry = slots[slot] {
            if entry.key == key { return (slot, true) }
            slot = (slot + 1) & mask
        }
        return (slot, false)
    }

    /// Puts a new entry in the free `slot` that ``slotForInsert(_:)`` gave for its key.
    @inlinable
    mutating func place(key: UInt64, value: Value, at slot: Int) {
        slots[slot] = Entry(key: key, value: value)
        entryCount += 1
    }

    /// Doubles the slots (or makes the first 8) and puts every entry in its new place.
    @usableFromInline
    mutating func grow() {
        let old = slots
        replaceSlots(count: Swift.max(Self.minimumSlots, old.count * 2))
        let mask = slots.count - 1
        for case let entry? in old {
            var slot = home(entry.key)
            while slots[slot] != nil { slot = (slot + 1) & mask }
            slots[slot] = entry
        }
    }
}

extension AddressTable: Sendable where Value: Sendable {}
extension AddressTable.Entry: Sendable where Value: Sendable {}

extension AddressTable: Sequence {
    public struct Iterator: IteratorProtocol {
        @usableFromInline let slots: ContiguousArray<Entry?>
        @usableFromInline var index = 0

        @inlinable init(slots: ContiguousArray<Entry?>) { self.slots = slots }

        @inlinable
        public mutating func next() -> (key: UInt64, value: Value)? {
            while index < slots.count {
                defer { index += 1 }
                if let entry = slots[index] { return (entry.key, entry.value) }
            }
            return nil
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(slots: slots) }

    public var underestimatedCount: Int { count }
}

/// A set of `UInt64` keys in an ``AddressTable``: its hashing, for the same reasons.
public struct AddressSet: Sequence {
    @usableFromInline var table = AddressTable<Void>()

    public init() {}

    @inlinable public var count: Int { table.count }
    @inlinable public var isEmpty: Bool { table.isEmpty }

    @inlinable
    public func contains(_ key: UInt64) -> Bool { table.contains(key) }

    /// Inserts `key`; whether it was not there yet.
    @inlinable
    @discardableResult
    public mutating func insert(_ key: UInt64) -> Bool { table.updateValue((), forKey: key) == nil }

    /// Removes `key`; whether it was there.
    @inlinable
    @discardableResult
    public mutating func remove(_ key: UInt64) -> Bool { table.removeValue(forKey: key) != nil }

    public mutating func removeAll() { table.removeAll() }

    /// The keys in slot order, read from the table (no array of them made).
    public struct Iterator: IteratorProtocol {
        @usableFromInline var entries: AddressTable<Void>.Iterator

        @inlinable init(_ entries: AddressTable<Void>.Iterator) { self.entries = entries }

        @inlinable
        public mutating func next() -> UInt64? { entries.next()?.key }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(table.makeIterator()) }

    public var underestimatedCount: Int { count }
}

extension AddressSet: Sendable {}
