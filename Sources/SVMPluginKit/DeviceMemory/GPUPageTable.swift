/// A simulated GPU page table for a 48-bit virtual address space, with 4 KiB, 64 KiB and
/// 2 MiB leaves (the page sizes of Intel Xe).
///
/// ## Overview
/// A leaf maps one naturally aligned page of device VA to a ``Target``: an address in some
/// memory (local VRAM, a peer's VRAM, system memory) with the ``LinkProtocol`` that reaches
/// it and the access it allows — the `drm_pagemap_addr` the SVM core resolved for the page.
/// ``translate(_:)`` is the device's page walk; `nil` is a device page fault.
///
/// The table is radix-shaped like the hardware's: one directory entry per 2 MiB of VA (in a
/// hash map, standing in for the three upper levels) holds either a 2 MiB leaf or a table of
/// 512 entries of 4 KiB. A 64 KiB leaf fills 16 consecutive entries, as Xe's 64K pages do.
/// A translation is one hash lookup and one array index.
///
/// ## Alignment
/// The VA and the target address of a leaf are multiples of its size, so a 64 KiB leaf only
/// goes where the VA is 64 KiB aligned and a 2 MiB leaf only where it is 2 MiB aligned.
/// Violations throw ``GPUPageTableError`` and change nothing.
///
/// ## Overlaps and unmapping
/// Mapping over an existing leaf throws ``GPUPageTableError/overlapsMapping(requested:existing:)``:
/// the caller zaps first (as the kernel does on invalidation, then rebinds). ``unmap(_:)``
/// zaps whole leaves only, as the kernel zaps whole SVM ranges: the range must be 4 KiB
/// aligned and must not cut a 64 KiB or 2 MiB leaf, or it throws
/// ``GPUPageTableError/unmapSplitsLeaf(requested:leaf:)`` and unmaps nothing. A caller holding
/// arbitrary bounds widens them with ``leafAlignedRange(covering:)`` first. Unmapping VA
/// with no leaves is not an error, so a zap is idempotent.
///
/// ## Locking
/// A value type with no internal synchronization: the device keeps it under its page-table
/// lock (the SVM core's notifier lock protects commits and zaps).
public struct GPUPageTable: Sendable {
    /// The VA bits: addresses are below 2^48.
    public static let addressBits = 48
    /// The end of the VA space: 2^48.
    public static let addressLimit: UInt64 = 1 << 48

    /// The size of a leaf.
    public enum LeafSize: UInt64, CaseIterable, Comparable, Sendable, CustomStringConvertible {
        case size4K = 0x1000
        case size64K = 0x1_0000
        case size2M = 0x20_0000

        /// The size in bytes.
        public var bytes: UInt64 { rawValue }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String { ByteCount.format(rawValue) }

        /// The leaf's place in the table's counts.
        var countIndex: Int {
            switch self {
            case .size4K: 0
            case .size64K: 1
            case .size2M: 2
            }
        }
    }

    /// Where a leaf points: the device-side form of a pagemap address.
    public struct Target: Hashable, Sendable, CustomStringConvertible {
        /// The address in the target memory (a VRAM offset, a peer address or a DMA address),
        /// of the first byte of the leaf or of the mapping.
        public var address: UInt64
        /// How the device reaches the memory.
        public var linkProtocol: LinkProtocol
        /// Whether the device may write.
        public var writable: Bool
        /// Whether the device may perform atomics (some links and memories do not allow them).
        public var atomicAllowed: Bool
        /// For the peer protocols, the host device id of the device whose memory it is.
        public var owner: UInt64

        public init(
            address: UInt64, linkProtocol: LinkProtocol, writable: Bool = true,
            atomicAllowed: Bool = true, owner: UInt64 = 0
        ) {
            self.address = address
            self.linkProtocol = linkProtocol
            self.writable = writable
            self.atomicAllowed = atomicAllowed
            self.owner = owner
        }

        func advanced(by bytes: UInt64) -> Target {
            var target = self
            target.address += bytes
            return target
        }

        public var description: String {
            "\(linkProtocol.rawValue):0x\(String(address, radix: 16))" + (owner != 0 ? " of device \(owner)" : "")
                + (writable ? " rw" : " ro") + (atomicAllowed ? " atomic" : "")
        }
    }

    /// One mapped leaf.
    public struct Leaf: Hashable, Sendable {
        /// The first VA of the leaf.
        public let virtualAddress: UInt64
        public let size: LeafSize
        /// The target of the leaf's first byte.
        public let target: Target

        /// The VA the leaf covers.
        public var range: Range<UInt64> { virtualAddress ..< virtualAddress + size.bytes }
    }

    /// The result of a page walk.
    public struct Translation: Hashable, Sendable {
        /// The target address of the translated byte: the leaf's target plus the offset in it.
        public let address: UInt64
        public let linkProtocol: LinkProtocol
        public let writable: Bool
        public let atomicAllowed: Bool
        /// For the peer protocols, whose memory it is (``Target/owner``).
        public let owner: UInt64
        /// The leaf that holds the VA.
        public let leafStart: UInt64
        public let leafSize: LeafSize

        /// The VA the leaf covers.
        public var leafRange: Range<UInt64> { leafStart ..< leafStart + leafSize.bytes }
    }

    /// One 4 KiB slot of a table; the slots of a 64 KiB leaf all hold the leaf's target.
    private struct Entry: Sendable {
        var target: Target
        var size: LeafSize
    }

    /// The directory entry for one 2 MiB of VA: a 2 MiB leaf, or a table of 4 KiB slots.
    private struct Directory: Sendable {
        var huge: Target?
        /// 512 slots when small leaves exist, empty otherwise.
        var slots: [Entry?] = []
        /// Small leaves in `slots`; the directory goes away when the last one does.
        var smallLeaves = 0

        mutating func addSmallLeaf(_ entry: Entry, at span: Range<Int>) {
            for slot in span { slots[slot] = entry }
            smallLeaves += 1
        }
    }

    private static let regionShift = 21
    private static let regionSize: UInt64 = 1 << 21
    private static let slotShift = 12
    private static let slotsPerRegion = 512

    /// Directories by `va >> 21`.
    private var directories = AddressTable<Directory>()
    /// Leaves by size: 4 KiB, 64 KiB, 2 MiB (``LeafSize/countIndex``). An array, not a
    /// dictionary: every map and unmap counts, and a hash each time was a tenth of a map.
    private var counts = [0, 0, 0]

    /// The VA bytes mapped.
    public private(set) var mappedBytes: UInt64 = 0

    public init() {}

    /// The number of leaves of `size`.
    ///
    /// - Complexity: O(1).
    public func leafCount(_ size: LeafSize) -> Int { counts[size.countIndex] }

    /// The number of leaves of all sizes.
    ///
    /// - Complexity: O(1).
    public var leafCount: Int { counts.reduce(0, +) }

    /// Whether nothing is mapped.
    public var isEmpty: Bool { directories.isEmpty }

    /// Walks the table for `virtualAddress`: the target byte and the leaf that maps it, or
    /// `nil` (a device page fault) when nothing does or the address is beyond 48 bits.
    ///
    /// - Complexity: O(1): one hash lookup and one array index.
    public func translate(_ virtualAddress: UInt64) -> Translation? {
        guard virtualAddress < Self.addressLimit,
            let directory = directories[virtualAddress >> Self.regionShift]
        else { return nil }
        let target: Target
        let size: LeafSize
        if let huge = directory.huge {
            (target, size) = (huge, .size2M)
        } else {
            guard let entry = directory.slots[Self.slotIndex(virtualAddress)] else { return nil }
            (target, size) = (entry.target, entry.size)
        }
        let leafStart = virtualAddress & ~(size.bytes - 1)
        return Translation(
            address: target.address + (virtualAddress - leafStart),
            linkProtocol: target.linkProtocol, writable: target.writable,
            atomicAllowed: target.atomicAllowed, owner: target.owner, leafStart: leafStart, leafSize: size)
    }

    /// Maps `size` bytes at `virtualAddress` to consecutive target addresses from
    /// `target.address`, with leaves of `pageSize`.
    ///
    /// - Throws: ``GPUPageTableError`` when `size` is not a non-zero multiple of `pageSize`,
    ///   the VA or the target address is not `pageSize` aligned, the VA runs past 2^48, or a
    ///   leaf already maps part of the VA. Nothing is mapped then.
    /// - Complexity: O(size / 4 KiB) for small leaves, O(size / 2 MiB) for 2 MiB leaves.
    public mutating func map(
        virtualAddress: UInt64, size: UInt64, pageSize: LeafSize, target: Target
    ) throws(GPUPageTableError) {
        guard size > 0, size % pageSize.bytes == 0 else {
            throw .invalidSize(size: size, pageSize: pageSize)
        }
        guard target.address % pageSize.bytes == 0 else {
            throw .misalignedTarget(address: target.address, pageSize: pageSize)
        }
        // Leaf by leaf from the one target: no array of targets to build.
        try map(virtualAddress: virtualAddress, pageSize: pageSize, count: Int(size / pageSize.bytes)) {
            target.advanced(by: UInt64($0) * pageSize.bytes)
        }
    }

    /// Maps one leaf of `pageSize` per target, at consecutive VAs from `virtualAddress`: the
    /// form for pages scattered in memory (system pages, a device allocation of many blocks).
    ///
    /// - Throws: as `map(virtualAddress:size:pageSize:target:)`; nothing is mapped then.
    /// - Complexity: O(targets.count · leaf size / 4 KiB) for small leaves, O(targets.count)
    ///   for 2 MiB leaves.
    public mutating func map(
        virtualAddress: UInt64, pageSize: LeafSize, targets: [Target]
    ) throws(GPUPageTableError) {
        try map(virtualAddress: virtualAddress, pageSize: pageSize, count: targets.count) { targets[$0] }
    }

    /// Maps `count` leaves of `pageSize` at consecutive VAs, the `index`th to `target(index)`.
    private mutating func map(
        virtualAddress: UInt64, pageSize: LeafSize, count: Int, target targetAt: (Int) -> Target
    ) throws(GPUPageTableError) {
        let leafBytes = pageSize.bytes
        guard count > 0 else { throw .invalidSize(size: 0, pageSize: pageSize) }
        guard virtualAddress % leafBytes == 0 else {
            throw .misalignedAddress(virtualAddress: virtualAddress, pageSize: pageSize)
        }
        let (bytes, overflow) = UInt64(count).multipliedReportingOverflow(by: leafBytes)
        guard !overflow, virtualAddress < Self.addressLimit,
            bytes <= Self.addressLimit - virtualAddress
        else { throw .outsideAddressSpace(virtualAddress: virtualAddress, size: bytes) }
        let requested = virtualAddress ..< virtualAddress + bytes

        // Validate everything first, so a failure maps nothing.
        for index in 0 ..< count {
            let address = targetAt(index).address
            guard address % leafBytes == 0 else { throw .misalignedTarget(address: address, pageSize: pageSize) }
            if let existing = firstLeaf(overlapping: virtualAddress + UInt64(index) * leafBytes, pageSize) {
                throw .overlapsMapping(requested: requested, existing: existing)
            }
        }
        for index in 0 ..< count {
            insert(at: virtualAddress + UInt64(index) * leafBytes, pageSize, targetAt(index))
        }
    }

    /// Zaps every leaf in `range` (the invalidation path) and returns the bytes unmapped.
    ///
    /// - Throws: ``GPUPageTableError/misalignedRange(_:)`` when the bounds are not 4 KiB
    ///   aligned, ``GPUPageTableError/outsideAddressSpace(virtualAddress:size:)`` past 2^48,
    ///   ``GPUPageTableError/unmapSplitsLeaf(requested:leaf:)`` when a leaf lies partly
    ///   outside `range`. Nothing is unmapped then.
    /// - Complexity: O(min(range / 2 MiB, directories) + leaves unmapped · 16).
    @discardableResult
    public mutating func unmap(_ range: Range<UInt64>) throws(GPUPageTableError) -> UInt64 {
        try validateBounds(range)
        guard !range.isEmpty else { return 0 }
        // Only a leaf holding one of the two ends can stick out of the range (the ends one
        // by one: an array of the two was an allocation per zap).
        func checkEnd(_ end: UInt64) throws(GPUPageTableError) {
            if let leaf = translate(end)?.leafRange,
                leaf.lowerBound < range.lowerBound || leaf.upperBound > range.upperBound
            {
                throw .unmapSplitsLeaf(requested: range, leaf: leaf)
            }
        }
        try checkEnd(range.lowerBound)
        try checkEnd(range.upperBound - 1)
        var unmapped: UInt64 = 0
        func unmap(directory key: UInt64) {
            // In place (a directory taken out and put back was a removal and an insertion
            // per zap); the leaves unmapped counted by size, applied to `counts` after.
            var removed = (size4K: 0, size64K: 0, size2M: 0)
            let span = Self.slotSpan(key, range)
            let keep = directories.modifyValue(forKey: key) { directory -> Bool in
                if directory.huge != nil {
                    // Not split (checked above), so wholly inside the range.
                    directory.huge = nil
                    removed.size2M += 1
                    unmapped += Self.regionSize
                    return false
                }
                for slot in span {
                    guard let entry = directory.slots[slot] else { continue }
                    directory.slots[slot] = nil
                    unmapped += LeafSize.size4K.bytes
                    // Count a 64 KiB leaf once: at its first slot, which lies in the range.
                    if entry.size == .size4K || slot % 16 == 0 {
                        if entry.size == .size4K { removed.size4K += 1 } else { removed.size64K += 1 }
                        directory.smallLeaves -= 1
                    }
                }
                return directory.smallLeaves > 0
            }
            guard let keep else { return }
            if !keep { directories.removeValue(forKey: key) }
            counts[LeafSize.size4K.countIndex] -= removed.size4K
            counts[LeafSize.size64K.countIndex] -= removed.size64K
            counts[LeafSize.size2M.countIndex] -= removed.size2M
        }
        // Key by key for a short span (a zap of one range: no array of keys made; a missing
        // directory is skipped), else the directories' own keys.
        guard let span = keySpan(intersecting: range) else { return 0 }
        if isShortWalk(span) {
            for key in span { unmap(directory: key) }
        } else {
            for key in directoryKeys(intersecting: range) { unmap(directory: key) }
        }
        mappedBytes -= unmapped
        return unmapped
    }

    /// Unmaps everything.
    ///
    /// - Complexity: O(directories).
    public mutating func removeAll() {
        directories.removeAll()
        counts = [0, 0, 0]
        mappedBytes = 0
    }

    /// The leaves that intersect `range`, by VA.
    ///
    /// - Complexity: O(min(range / 2 MiB, directories) · log + slots visited).
    public func leaves(in range: Range<UInt64> = 0 ..< GPUPageTable.addressLimit) -> [Leaf] {
        var leaves: [Leaf] = []
        for key in directoryKeys(intersecting: range) {
            guard let directory = directories[key] else { continue }
            let base = key << Self.regionShift
            if let huge = directory.huge {
                leaves.append(Leaf(virtualAddress: base, size: .size2M, target: huge))
                continue
            }
            let span = Self.slotSpan(key, range)
            var slot = span.lowerBound
            while slot < span.upperBound {
                guard let entry = directory.slots[slot] else {
                    slot += 1
                    continue
                }
                let slotsPerLeaf = Int(entry.size.bytes >> UInt64(Self.slotShift))
                let first = slot & ~(slotsPerLeaf - 1)
                leaves.append(
                    Leaf(
                        virtualAddress: base + UInt64(first) << UInt64(Self.slotShift),
                        size: entry.size, target: entry.target))
                slot = first + slotsPerLeaf
            }
        }
        return leaves
    }

    /// `range` widened to 4 KiB and to every leaf it cuts: the smallest range that
    /// ``unmap(_:)`` accepts and that zaps everything mapped in `range`.
    ///
    /// - Complexity: O(1).
    public func leafAlignedRange(covering range: Range<UInt64>) -> Range<UInt64> {
        guard !range.isEmpty else { return range }
        let page = LeafSize.size4K.bytes
        var lower = range.lowerBound & ~(page - 1)
        var upper = min((range.upperBound + page - 1) & ~(page - 1), Self.addressLimit)
        if let leaf = translate(range.lowerBound)?.leafRange { lower = min(lower, leaf.lowerBound) }
        if let leaf = translate(range.upperBound - 1)?.leafRange { upper = max(upper, leaf.upperBound) }
        return lower ..< upper
    }

    // MARK: - Internals

    private static func slotIndex(_ virtualAddress: UInt64) -> Int {
        Int((virtualAddress >> UInt64(slotShift)) & UInt64(slotsPerRegion - 1))
    }

    /// The slots of directory `key` that `range` covers.
    private static func slotSpan(_ key: UInt64, _ range: Range<UInt64>) -> Range<Int> {
        let base = key << regionShift
        let lower = max(range.lowerBound, base)
        let upper = min(range.upperBound, base + regionSize)
        return Int((lower - base) >> UInt64(slotShift)) ..< Int((upper - base + 0xFFF) >> UInt64(slotShift))
    }

    /// The keys of the directories that intersect `range`, ascending. Walks the range or the
    /// directories, whichever is shorter, so zapping the whole VA space stays cheap.
    private func directoryKeys(intersecting range: Range<UInt64>) -> [UInt64] {
        guard let span = keySpan(intersecting: range) else { return [] }
        if isShortWalk(span) { return span.filter { directories[$0] != nil } }
        return directories.keys.filter { span.contains($0) }.sorted()
    }

    /// The directory keys `range` covers, or `nil` when it is empty or beyond the VA space.
    private func keySpan(intersecting range: Range<UInt64>) -> ClosedRange<UInt64>? {
        guard !range.isEmpty, range.lowerBound < Self.addressLimit else { return nil }
        return (range.lowerBound >> Self.regionShift) ... ((min(range.upperBound, Self.addressLimit) - 1) >> Self.regionShift)
    }

    /// Whether walking `span` key by key is shorter than walking the directories.
    private func isShortWalk(_ span: ClosedRange<UInt64>) -> Bool {
        span.upperBound - span.lowerBound < UInt64(directories.count)
    }

    private func validateBounds(_ range: Range<UInt64>) throws(GPUPageTableError) {
        let page = LeafSize.size4K.bytes
        guard range.lowerBound % page == 0, range.upperBound % page == 0 else {
            throw .misalignedRange(range)
        }
        guard range.upperBound <= Self.addressLimit else {
            throw .outsideAddressSpace(
                virtualAddress: range.lowerBound, size: range.upperBound - range.lowerBound)
        }
    }

    /// The first existing leaf that overlaps a new leaf at `virtualAddress` of `size`.
    private func firstLeaf(overlapping virtualAddress: UInt64, _ size: LeafSize) -> Range<UInt64>? {
        guard let directory = directories[virtualAddress >> Self.regionShift] else { return nil }
        if directory.huge != nil {
            let base = virtualAddress & ~(Self.regionSize - 1)
            return base ..< base + Self.regionSize
        }
        let first = Self.slotIndex(virtualAddress)
        let count = Int(size.bytes >> UInt64(Self.slotShift))
        for slot in first ..< first + min(count, Self.slotsPerRegion) where directory.slots[slot] != nil {
            return translate(virtualAddress + UInt64(slot - first) << UInt64(Self.slotShift))?.leafRange
        }
        return nil
    }

    /// Inserts one validated leaf.
    private mutating func insert(at virtualAddress: UInt64, _ size: LeafSize, _ target: Target) {
        let key = virtualAddress >> Self.regionShift
        if size == .size2M {
            directories[key] = Directory(huge: target)
        } else {
            let first = Self.slotIndex(virtualAddress)
            let span = first ..< first + Int(size.bytes >> UInt64(Self.slotShift))
            // In place, as in unmap. No 2 MiB leaf is there: the caller checked for overlaps.
            directories[key, default: Directory(slots: Array(repeating: nil, count: Self.slotsPerRegion))].addSmallLeaf(
                Entry(target: target, size: size), at: span)
        }
        counts[size.countIndex] += 1
        mappedBytes += size.bytes
    }
}

/// Why a page-table operation was refused; all are bugs in the caller (`EINVAL`).
public enum GPUPageTableError: PluginStatusConvertible, Hashable, Sendable, CustomStringConvertible {
    /// A VA not aligned to the leaf size.
    case misalignedAddress(virtualAddress: UInt64, pageSize: GPUPageTable.LeafSize)
    /// A target address not aligned to the leaf size.
    case misalignedTarget(address: UInt64, pageSize: GPUPageTable.LeafSize)
    /// A size that is zero or not a multiple of the leaf size.
    case invalidSize(size: UInt64, pageSize: GPUPageTable.LeafSize)
    /// VA at or beyond 2^48.
    case outsideAddressSpace(virtualAddress: UInt64, size: UInt64)
    /// A map over an existing leaf: unmap it first.
    case overlapsMapping(requested: Range<UInt64>, existing: Range<UInt64>)
    /// Unmap bounds that are not 4 KiB aligned.
    case misalignedRange(Range<UInt64>)
    /// An unmap that would cut a leaf: widen it with `leafAlignedRange(covering:)`.
    case unmapSplitsLeaf(requested: Range<UInt64>, leaf: Range<UInt64>)

    public var pluginErrno: PluginErrno { .invalidArgument }

    public var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        func span(_ range: Range<UInt64>) -> String { "[\(hex(range.lowerBound)), \(hex(range.upperBound)))" }
        switch self {
        case let .misalignedAddress(va, pageSize):
            return "virtual address \(hex(va)) is not aligned to the \(pageSize) page size"
        case let .misalignedTarget(address, pageSize):
            return "target address \(hex(address)) is not aligned to the \(pageSize) page size"
        case let .invalidSize(size, pageSize):
            return "mapping size \(hex(size)) is not a non-zero multiple of the \(pageSize) page size"
        case let .outsideAddressSpace(va, size):
            return "\(hex(size)) bytes at \(hex(va)) run past the 48-bit device address space"
        case let .overlapsMapping(requested, existing):
            return "mapping \(span(requested)) overlaps the mapped leaf \(span(existing)); unmap it first"
        case let .misalignedRange(range):
            return "unmap range \(span(range)) is not 4 KiB aligned"
        case let .unmapSplitsLeaf(requested, leaf):
            return "unmap range \(span(requested)) cuts the leaf \(span(leaf)); "
                + "unmap whole leaves (leafAlignedRange(covering:))"
        }
    }
}
