import Synchronization

/// A buddy allocator for device memory: the analog of the kernel's `drm_buddy`.
///
/// ## Overview
/// The allocator manages offsets `0 ..< totalBytes` of one device's memory. Every block it
/// hands out is a power-of-two multiple of the minimum chunk (4 KiB or 64 KiB on Xe, the
/// `min_page_size` of ``PagemapInfo``) and is naturally aligned: a block of `2^k` chunks
/// starts at a multiple of its own size. Freeing a block merges it with its buddy (the other
/// half of their parent) for as long as the buddy is free too, so the free space is always
/// described by the fewest, largest blocks.
///
/// A size that is not a power of two is covered by several roots, largest first at offset 0
/// (as `drm_buddy_init` does): 12 MiB are an 8 MiB root at 0 and a 4 MiB root at 8 MiB.
/// ``maxBlockSize`` is the largest root; no block is bigger.
///
/// ## Placement
/// ``Placement/topDown`` (the default, as `DRM_BUDDY_TOPDOWN_ALLOCATION`) takes the free block
/// with the highest offset among all orders large enough, then splits it and keeps the upper
/// half each time; the first 4 KiB allocation of an empty 1 MiB allocator is `0xFF000`.
/// ``Placement/bottomUp`` is its mirror: lowest offset first, lower halves kept.
///
/// ## Requests of several blocks
/// `allocate(size:alignment:)` follows `drm_buddy_alloc_blocks`: `alignment` is the smallest
/// block the caller accepts (the kernel's `min_block_size`). The size is rounded up to a
/// multiple of it, then covered greedily: the largest order that fits the remaining size is
/// tried first and smaller orders down to `alignment` after it. Without an alignment the
/// largest power of two that divides the size is used, so a power-of-two request is always
/// one contiguous block, and 3 MiB are a 2 MiB block and a 1 MiB block. A failed request
/// leaves the allocator exactly as it was. Unlike the kernel, the rounded-up tail is not
/// trimmed: the returned blocks may add up to more than `size`.
///
/// ## Errors
/// ``BuddyAllocatorError`` says what the caller should do: `outOfMemory` (`ENOMEM`) means
/// evict and retry, or fall back to system memory; every other case (`EINVAL`) is a bug in
/// the caller, including a request that even an empty allocator could not satisfy. A double
/// free, or a block of another allocator, throws and changes nothing.
///
/// ## Locking
/// A value type with no internal synchronization: the device that owns it keeps it under the
/// lock that protects its memory (for example inside a `Mutex`). A copy is a snapshot that
/// shares the identity of the original, so a block of one copy is accepted by the other.
public struct BuddyAllocator: Sendable {
    /// Which end of the address space allocations come from.
    public enum Placement: Sendable, Hashable {
        /// Highest free offsets first (`DRM_BUDDY_TOPDOWN_ALLOCATION`).
        case topDown
        /// Lowest free offsets first.
        case bottomUp
    }

    /// An allocated block: `size` bytes at `offset`, `size == minChunkSize << order`.
    ///
    /// Only the allocator creates blocks; a block remembers which allocator it came from.
    public struct Block: Hashable, Sendable, CustomStringConvertible {
        /// The device-memory offset of the first byte, a multiple of `size`.
        public let offset: UInt64
        /// log2 of the size in minimum chunks, as `drm_buddy_block_order`.
        public let order: Int
        /// The size in bytes, a power of two.
        public let size: UInt64
        let allocatorID: UInt64

        init(offset: UInt64, order: Int, size: UInt64, allocatorID: UInt64) {
            self.offset = offset
            self.order = order
            self.size = size
            self.allocatorID = allocatorID
        }

        /// The bytes the block covers.
        public var range: Range<UInt64> { offset ..< offset + size }

        /// The offset alone: equal blocks have equal offsets, and the allocator's set of
        /// live blocks hashes one on every allocation and free (a quarter of the hashing
        /// all four fields took).
        public func hash(into hasher: inout Hasher) {
            hasher.combine(offset)
        }

        public var description: String {
            "block 0x\(String(offset, radix: 16)) + \(ByteCount.format(size)) (order \(order))"
        }
    }

    /// The bytes managed, a multiple of ``minChunkSize``.
    public let totalBytes: UInt64
    /// The smallest block, a power of two of at least 4 KiB.
    public let minChunkSize: UInt64
    /// Which end allocations come from.
    public let placement: Placement
    /// The order of the largest root: no block is larger than `minChunkSize << maxOrder`.
    public let maxOrder: Int

    /// The bytes not allocated.
    public private(set) var availableBytes: UInt64

    /// The roots, largest first: (offset, order). At most 64.
    private let roots: [(offset: UInt64, order: Int)]
    private let chunkShift: Int
    private let id: UInt64
    /// Free blocks by order: the offsets. The source of truth for "is this block free".
    private var freeOffsets: [AddressSet]
    /// Free blocks by order, ordered by preference (see `Hints`); may hold stale entries.
    private var hints: [Hints]
    /// Bit `k` set when `freeOffsets[k]` is not empty: an allocation looks only at orders
    /// that have a free block (a 1 GiB allocator of 4 KiB chunks has 19 orders, and most
    /// are empty), instead of asking every order's hints.
    private var nonEmptyOrders: UInt64 = 0
    /// Per order with a free block, the key of its preferred one (the top of its hints once
    /// the stale ones are dropped), kept up to date by every insert and removal: an
    /// allocation compares the tops of every order with a free block (some 15 of them), and
    /// reads them here instead of checking each order's hints.
    private var tops: [UInt64]
    /// The blocks handed out and not yet freed: their orders, by offset.
    private var allocated = AddressTable<Int>()

    private static let nextID = Atomic<UInt64>(1)

    /// Creates an allocator for `totalBytes` bytes in chunks of at least `minChunkSize`.
    ///
    /// - Throws: ``BuddyAllocatorError/invalidConfiguration(totalBytes:minChunkSize:)`` when
    ///   `minChunkSize` is not a power of two of at least 4 KiB, or `totalBytes` is zero, above
    ///   2^63 or not a multiple of `minChunkSize`.
    /// - Complexity: O(log `totalBytes`).
    public init(
        totalBytes: UInt64, minChunkSize: UInt64 = 4096, placement: Placement = .topDown
    ) throws(BuddyAllocatorError) {
        guard minChunkSize >= 4096, minChunkSize.nonzeroBitCount == 1, totalBytes > 0,
            totalBytes <= 1 << 63, totalBytes % minChunkSize == 0
        else { throw .invalidConfiguration(totalBytes: totalBytes, minChunkSize: minChunkSize) }
        self.totalBytes = totalBytes
        self.minChunkSize = minChunkSize
        self.placement = placement
        chunkShift = minChunkSize.trailingZeroBitCount
        availableBytes = totalBytes
        id = Self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue

        // One root per set bit of the size, largest first at offset 0: every root starts at a
        // multiple of its own size because all the roots before it are larger powers of two.
        var roots: [(offset: UInt64, order: Int)] = []
        var offset: UInt64 = 0
        var remaining = totalBytes
        while remaining > 0 {
            let rootSize = UInt64(1) << (63 - remaining.leadingZeroBitCount)
            roots.append((offset, rootSize.trailingZeroBitCount - chunkShift))
            offset += rootSize
            remaining -= rootSize
        }
        self.roots = roots
        maxOrder = roots[0].order
        freeOffsets = Array(repeating: AddressSet(), count: maxOrder + 1)
        hints = Array(repeating: Hints(), count: maxOrder + 1)
        tops = Array(repeating: 0, count: maxOrder + 1)
        for root in roots { insertFree(offset: root.offset, order: root.order) }
    }

    /// The largest block that one allocation could get now; 0 when nothing is free.
    ///
    /// - Complexity: O(1).
    public var largestFreeBlock: UInt64 {
        nonEmptyOrders == 0 ? 0 : blockSize(63 - nonEmptyOrders.leadingZeroBitCount)
    }

    /// The largest block the allocator can ever hand out: its largest root.
    public var maxBlockSize: UInt64 { blockSize(maxOrder) }

    /// The number of blocks handed out and not yet freed.
    public var allocatedBlockCount: Int { allocated.count }

    /// Whether `block` came from this allocator and is not freed yet.
    ///
    /// - Complexity: O(1).
    public func isAllocated(_ block: Block) -> Bool { block.allocatorID == id && allocated[block.offset] == block.order }

    /// Allocates at least `size` bytes as naturally aligned power-of-two blocks of at least
    /// `alignment` bytes each, largest first (see the type's overview).
    ///
    /// - Parameters:
    ///   - size: A non-zero multiple of ``minChunkSize``.
    ///   - alignment: The smallest acceptable block, a power of two no larger than
    ///     ``maxBlockSize``; values below ``minChunkSize`` mean ``minChunkSize``. `nil` means
    ///     the largest power of two that divides `size`: one block for a power-of-two size.
    /// - Returns: The blocks, largest first; their sizes add up to `size` rounded up to a
    ///   multiple of `alignment`.
    /// - Throws: ``BuddyAllocatorError/outOfMemory(requested:alignment:available:largestFreeBlock:)``
    ///   when the free space cannot hold the request now (evict and retry);
    ///   `invalidSize`, `invalidAlignment` or `exceedsCapacity` (all `EINVAL`) for a request
    ///   that is wrong or could never fit.
    ///   Nothing is allocated when it throws.
    /// - Complexity: O(b · (``maxOrder`` + log n)) amortized, for b blocks returned and n free
    ///   blocks.
    public mutating func allocate(size: UInt64, alignment: UInt64? = nil) throws(BuddyAllocatorError)
        -> [Block]
    {
        guard size > 0, size % minChunkSize == 0 else {
            throw .invalidSize(size: size, minChunkSize: minChunkSize)
        }
        guard size <= totalBytes else {
            throw .exceedsCapacity(requested: size, totalBytes: totalBytes)
        }
        let minBlock = max(alignment ?? (size & (0 &- size)), minChunkSize)
        guard minBlock.nonzeroBitCount == 1, minBlock <= maxBlockSize else {
            throw .invalidAlignment(alignment: alignment ?? minBlock, maxBlockSize: maxBlockSize)
        }
        // No overflow: size <= 2^63 and the padding is below minBlock <= 2^63.
        let padding = size % minBlock == 0 ? 0 : minBlock - size % minBlock
        let rounded = size + padding
        // A multiple of minBlock no larger than the total always fits an empty allocator: the
        // roots smaller than minBlock are exactly the low bits of the total.
        guard rounded <= totalBytes else {
            throw .exceedsCapacity(requested: rounded, totalBytes: totalBytes)
        }
        guard rounded <= availableBytes else { throw outOfMemory(size, minBlock) }

        let minOrder = order(ofSize: minBlock)
        var remaining = rounded >> chunkShift  // in chunks
        var order = min(63 - remaining.leadingZeroBitCount, maxOrder)
        var blocks: [Block] = []
        while remaining > 0 {
            order = min(order, 63 - remaining.leadingZeroBitCount)
            while true {
                if let block = takeBlock(order: order) {
                    blocks.append(block)
                    remaining -= 1 << UInt64(order)
                    break
                }
                if order == minOrder {
                    // Undo: with eager merging, freeing restores the exact previous state.
                    for block in blocks.reversed() { release(block) }
                    throw outOfMemory(size, minBlock)
                }
                order -= 1
            }
        }
        return blocks
    }

    /// ``allocate(size:alignment:)`` for one block of a power-of-two `size`: the same block
    /// it would return, without an array around it (device memory for one range, an IOVA
    /// block for one binding, on every fault).
    ///
    /// - Throws: `invalidSize` when `size` is not a power of two of at least
    ///   ``minChunkSize``, `exceedsCapacity` when it is larger than ``maxBlockSize``, and
    ///   `outOfMemory` when no free block is large enough now.
    public mutating func allocateBlock(size: UInt64) throws(BuddyAllocatorError) -> Block {
        guard size.nonzeroBitCount == 1, size >= minChunkSize else {
            throw .invalidSize(size: size, minChunkSize: minChunkSize)
        }
        guard size <= maxBlockSize else { throw .exceedsCapacity(requested: size, totalBytes: totalBytes) }
        guard size <= availableBytes, let block = takeBlock(order: order(ofSize: size)) else { throw outOfMemory(size, size) }
        return block
    }

    /// Frees `block` and merges it with its free buddies.
    ///
    /// - Throws: ``BuddyAllocatorError/foreignBlock(_:)`` for a block of another allocator,
    ///   ``BuddyAllocatorError/notAllocated(_:)`` for a block freed already. Nothing changes.
    /// - Complexity: O(``maxOrder`` + log n) amortized.
    public mutating func free(_ block: Block) throws(BuddyAllocatorError) {
        try validate(block)
        release(block)
    }

    /// Frees all of `blocks`, or none of them when one is invalid or appears twice.
    ///
    /// - Complexity: O(b · (``maxOrder`` + log n)) amortized.
    public mutating func free(_ blocks: some Sequence<Block>) throws(BuddyAllocatorError) {
        let blocks = Array(blocks)
        var seen: Set<Block> = []
        for block in blocks {
            try validate(block)
            guard seen.insert(block).inserted else { throw .notAllocated(block) }
        }
        for block in blocks { release(block) }
    }

    // MARK: - Internals

    private func blockSize(_ order: Int) -> UInt64 { minChunkSize << UInt64(order) }

    private func order(ofSize size: UInt64) -> Int { size.trailingZeroBitCount - chunkShift }

    private func outOfMemory(_ size: UInt64, _ alignment: UInt64) -> BuddyAllocatorError {
        .outOfMemory(
            requested: size, alignment: alignment, available: availableBytes,
            largestFreeBlock: largestFreeBlock)
    }

    private func validate(_ block: Block) throws(BuddyAllocatorError) {
        guard block.allocatorID == id else { throw .foreignBlock(block) }
        guard isAllocated(block) else { throw .notAllocated(block) }
    }

    /// The order of the root that contains `offset`: no merge goes above it.
    private func rootOrder(containing offset: UInt64) -> Int {
        for root in roots where offset >= root.offset && offset - root.offset < blockSize(root.order) {
            return root.order
        }
        preconditionFailure("offset 0x\(String(offset, radix: 16)) is outside the allocator")
    }

    /// Marks an allocated, validated block free and merges it upward.
    private mutating func release(_ block: Block) {
        allocated.removeValue(forKey: block.offset)
        availableBytes += block.size
        var offset = block.offset
        var order = block.order
        let limit = rootOrder(containing: offset)
        while order < limit {
            let buddy = offset ^ blockSize(order)
            guard removeFree(offset: buddy, order: order) else { break }
            offset = min(offset, buddy)
            order += 1
        }
        insertFree(offset: offset, order: order)
    }

    /// Hands out a block of `order` (split from a larger one if need be), or `nil`.
    private mutating func takeBlock(order: Int) -> Block? {
        guard let offset = takeFree(order: order) else { return nil }
        let block = Block(offset: offset, order: order, size: blockSize(order), allocatorID: id)
        allocated[offset] = order
        availableBytes -= block.size
        return block
    }

    /// Takes the free block at `offset` of `order` off the free lists (its hint goes stale);
    /// false when it is not free.
    private mutating func removeFree(offset: UInt64, order: Int) -> Bool {
        guard freeOffsets[order].remove(offset) else { return false }
        if freeOffsets[order].isEmpty {
            nonEmptyOrders &= ~(1 << UInt64(order))
        } else if tops[order] == key(offset) {
            // The top went: the next hint that is a free block is the new one.
            while let top = hints[order].top, !freeOffsets[order].contains(offsetOf(key: top)) { hints[order].pop() }
            tops[order] = hints[order].top!
        }
        return true
    }

    private mutating func insertFree(offset: UInt64, order: Int) {
        let key = key(offset)
        if freeOffsets[order].isEmpty || key > tops[order] { tops[order] = key }
        freeOffsets[order].insert(offset)
        nonEmptyOrders |= 1 << UInt64(order)
        hints[order].push(key)
        // Stale hints pile up when blocks merge away; rebuild before they dominate.
        if hints[order].count > 2 * freeOffsets[order].count + 32 {
            // Not `key(_:)`, which reads `self` while `hints` is being changed.
            let (offsets, topDown) = (freeOffsets[order], placement == .topDown)
            hints[order].rebuild(offsets) { Self.key($0, topDown: topDown) }
        }
    }

    /// Takes the preferred free block of at least `order`, splitting it down to `order`.
    private mutating func takeFree(order: Int) -> UInt64? {
        // The orders from `order` up that have a free block, lowest first.
        var candidates = nonEmptyOrders & ~((1 << UInt64(order)) - 1)
        guard candidates != 0 else { return nil }
        var best = (key: UInt64(0), order: -1)
        while candidates != 0 {
            let candidate = candidates.trailingZeroBitCount
            candidates &= candidates - 1
            if best.order < 0 || tops[candidate] > best.key { best = (tops[candidate], candidate) }
        }
        var offset = offsetOf(key: best.key)
        _ = removeFree(offset: offset, order: best.order)
        // Split, keeping the preferred half and freeing the other.
        var current = best.order
        while current > order {
            current -= 1
            let upper = offset + blockSize(current)
            switch placement {
            case .topDown:
                insertFree(offset: offset, order: current)
                offset = upper
            case .bottomUp:
                insertFree(offset: upper, order: current)
            }
        }
        return offset
    }

    /// Hints are a max-heap: the key makes the preferred offset the largest.
    private func key(_ offset: UInt64) -> UInt64 { Self.key(offset, topDown: placement == .topDown) }
    private static func key(_ offset: UInt64, topDown: Bool) -> UInt64 { topDown ? offset : ~offset }
    private func offsetOf(key: UInt64) -> UInt64 { placement == .topDown ? key : ~key }
}

extension BuddyAllocator {
    /// The free blocks, by offset: (offset, order). For tests and diagnostics.
    ///
    /// - Complexity: O(n log n) for n free blocks.
    public var freeBlocks: [(offset: UInt64, order: Int)] {
        freeOffsets.enumerated().flatMap { order, offsets in offsets.map { ($0, order) } }
            .sorted { $0.offset < $1.offset }
    }

    /// Checks the structure: free and allocated blocks aligned, disjoint and covering the
    /// whole space exactly; no two free buddies (merging is eager); the byte count right.
    ///
    /// - Complexity: O(n log n) for n blocks.
    func checkInvariants() {
        var spans: [(offset: UInt64, order: Int, free: Bool)] =
            freeBlocks.map { ($0.offset, $0.order, true) }
        spans += allocated.map { ($0.key, $0.value, false) }
        spans.sort { $0.offset < $1.offset }
        var position: UInt64 = 0
        var freeBytes: UInt64 = 0
        for span in spans {
            let size = blockSize(span.order)
            precondition(span.offset == position, "gap or overlap at 0x\(String(span.offset, radix: 16))")
            precondition(span.offset % size == 0, "misaligned block")
            precondition(span.order <= rootOrder(containing: span.offset), "block above its root")
            if span.free {
                freeBytes += size
                if span.order < rootOrder(containing: span.offset) {
                    precondition(!freeOffsets[span.order].contains(span.offset ^ size), "unmerged buddies")
                }
            }
            position += size
        }
        precondition(position == totalBytes, "blocks do not cover the space")
        precondition(freeBytes == availableBytes, "availableBytes is wrong")
        for order in 0 ... maxOrder {
            precondition(freeOffsets[order].isEmpty == (nonEmptyOrders & (1 << UInt64(order)) == 0), "nonEmptyOrders is wrong")
            let hinted = Set(hints[order].storage.map(offsetOf(key:)))
            precondition(freeOffsets[order].allSatisfy(hinted.contains), "free block without a hint")
            if !freeOffsets[order].isEmpty {
                precondition(freeOffsets[order].map(key).max() == tops[order], "tops is stale")
            }
        }
    }
}

/// Why an allocation or a free failed.
public enum BuddyAllocatorError: PluginStatusConvertible, Hashable, Sendable, CustomStringConvertible {
    /// Not enough free space of the right shape now: evict and retry, or use system memory.
    case outOfMemory(requested: UInt64, alignment: UInt64, available: UInt64, largestFreeBlock: UInt64)
    /// A size that is zero or not a multiple of the chunk.
    case invalidSize(size: UInt64, minChunkSize: UInt64)
    /// A request (rounded up to its alignment) larger than the whole allocator: it can never
    /// be satisfied, whatever is evicted.
    case exceedsCapacity(requested: UInt64, totalBytes: UInt64)
    /// An alignment that is not a power of two or larger than the largest block.
    case invalidAlignment(alignment: UInt64, maxBlockSize: UInt64)
    /// A block freed already (double free).
    case notAllocated(BuddyAllocator.Block)
    /// A block of another allocator.
    case foreignBlock(BuddyAllocator.Block)
    /// Bad arguments to `init`.
    case invalidConfiguration(totalBytes: UInt64, minChunkSize: UInt64)

    public var pluginErrno: PluginErrno {
        if case .outOfMemory = self { return .outOfMemory }
        return .invalidArgument
    }

    public var description: String {
        func bytes(_ value: UInt64) -> String { ByteCount.format(value) }
        switch self {
        case let .outOfMemory(requested, alignment, available, largest):
            return "device memory exhausted: \(bytes(requested)) in blocks of at least "
                + "\(bytes(alignment)) requested, \(bytes(available)) free, "
                + "largest free block \(bytes(largest))"
        case let .invalidSize(size, chunk):
            return "invalid allocation size \(bytes(size)): must be a non-zero multiple of "
                + "\(bytes(chunk))"
        case let .exceedsCapacity(requested, total):
            return "allocation of \(bytes(requested)) can never fit in \(bytes(total)) of device memory"
        case let .invalidAlignment(alignment, maxBlock):
            return "invalid alignment \(bytes(alignment)): must be a power of two of at most "
                + "\(bytes(maxBlock)) (the largest block)"
        case let .notAllocated(block):
            return "\(block) is not allocated (double free?)"
        case let .foreignBlock(block):
            return "\(block) belongs to another allocator"
        case let .invalidConfiguration(total, chunk):
            return "invalid buddy allocator of \(bytes(total)) with chunks of \(bytes(chunk)): "
                + "the chunk must be a power of two of at least 4 KiB and the size a non-zero "
                + "multiple of it"
        }
    }
}

/// A binary max-heap of keys: the per-order free-block hints of `BuddyAllocator`.
private struct Hints: Sendable {
    private(set) var storage: [UInt64] = []

    init() {}

    /// Replaces the keys with those of `offsets`, in the storage there is (a rebuild every
    /// few dozen frees allocated a new array each time).
    mutating func rebuild(_ offsets: AddressSet, key: (UInt64) -> UInt64) {
        storage.removeAll(keepingCapacity: true)
        for offset in offsets { storage.append(key(offset)) }
        for index in stride(from: storage.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    var count: Int { storage.count }
    var top: UInt64? { storage.first }

    mutating func push(_ key: UInt64) {
        storage.append(key)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[parent] < storage[child] else { break }
            storage.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() {
        guard !storage.isEmpty else { return }
        storage.swapAt(0, storage.count - 1)
        storage.removeLast()
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            var largest = parent
            // The two children, without an array literal: this runs on every allocation.
            let left = 2 * parent + 1
            if left < storage.count && storage[left] > storage[largest] { largest = left }
            if left + 1 < storage.count && storage[left + 1] > storage[largest] { largest = left + 1 }
            guard largest != parent else { return }
            storage.swapAt(parent, largest)
            parent = largest
        }
    }
}
