import Glibc
import SVMTestSupport
import Testing

@testable import SVMPluginKit

private let KiB: UInt64 = 1024
private let MiB: UInt64 = 1024 * 1024

@Suite("Buddy allocator")
struct BuddyAllocatorTests {
    @Test("Top-down: highest free offsets first, upper halves kept")
    func topDownOffsets() throws {
        var buddy = try BuddyAllocator(totalBytes: 1 * MiB)
        #expect(buddy.maxOrder == 8)
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [0xFF000])
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [0xFE000])
        let pair = try buddy.allocate(size: 8 * KiB)
        #expect(pair.map(\.offset) == [0xFC000])
        #expect(pair.map(\.order) == [1])
        // 64 KiB: the highest free block of order >= 4 is the 64 KiB one at 0xE0000.
        #expect(try buddy.allocate(size: 64 * KiB).map(\.offset) == [0xE0000])
        #expect(buddy.availableBytes == 1 * MiB - 80 * KiB)
        #expect(buddy.largestFreeBlock == 512 * KiB)
        buddy.checkInvariants()
    }

    @Test("Bottom-up mirrors top-down")
    func bottomUpOffsets() throws {
        var buddy = try BuddyAllocator(totalBytes: 1 * MiB, placement: .bottomUp)
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [0])
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [0x1000])
        #expect(try buddy.allocate(size: 8 * KiB).map(\.offset) == [0x2000])
        #expect(try buddy.allocate(size: 64 * KiB).map(\.offset) == [0x10000])
        buddy.checkInvariants()
    }

    @Test("Freeing everything, in any order, merges back into the full block")
    func mergeRestoresFullBlock() throws {
        var buddy = try BuddyAllocator(totalBytes: 1 * MiB)
        var blocks: [BuddyAllocator.Block] = []
        for _ in 0 ..< 256 { blocks += try buddy.allocate(size: 4 * KiB) }
        #expect(Set(blocks.map(\.offset)) == Set(stride(from: 0, to: 1 * MiB, by: 4096)))
        #expect(buddy.availableBytes == 0)
        #expect(buddy.largestFreeBlock == 0)
        #expect(throws: BuddyAllocatorError.outOfMemory(
            requested: 4 * KiB, alignment: 4 * KiB, available: 0, largestFreeBlock: 0)) {
            try buddy.allocate(size: 4 * KiB)
        }
        var generator = SeededRandom(seed: 7)
        blocks.shuffle(using: &generator)
        for block in blocks { try buddy.free(block) }
        #expect(buddy.freeBlocks.map(\.offset) == [0])
        #expect(buddy.freeBlocks.map(\.order) == [8])
        #expect(buddy.largestFreeBlock == 1 * MiB)
        #expect(buddy.availableBytes == 1 * MiB)
        #expect(buddy.allocatedBlockCount == 0)
        buddy.checkInvariants()
    }

    @Test("Fragmentation: a large request is out of memory while small ones succeed")
    func fragmentation() throws {
        var buddy = try BuddyAllocator(totalBytes: 1 * MiB)
        var blocks: [BuddyAllocator.Block] = []
        for _ in 0 ..< 256 { blocks += try buddy.allocate(size: 4 * KiB) }
        // Free every other page: half the memory is free, in 4 KiB pieces.
        for block in blocks where block.offset % (8 * KiB) == 0 { try buddy.free(block) }
        #expect(buddy.availableBytes == 512 * KiB)
        #expect(buddy.largestFreeBlock == 4 * KiB)
        let error = #expect(throws: BuddyAllocatorError.self) { try buddy.allocate(size: 8 * KiB) }
        #expect(error == .outOfMemory(
            requested: 8 * KiB, alignment: 8 * KiB, available: 512 * KiB, largestFreeBlock: 4 * KiB))
        #expect(error?.pluginErrno == .outOfMemory)
        #expect(error?.description.contains("largest free block 4 KiB") == true)
        // A failed request changed nothing.
        #expect(buddy.availableBytes == 512 * KiB)
        buddy.checkInvariants()
        // Accepting 4 KiB pieces, 16 KiB is four blocks; a single page still fits.
        let pieces = try buddy.allocate(size: 16 * KiB, alignment: 4 * KiB)
        #expect(pieces.count == 4 && pieces.allSatisfy { $0.size == 4 * KiB })
        #expect(pieces.map(\.offset) == [0xFE000, 0xFC000, 0xFA000, 0xF8000])
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [0xF6000])
        buddy.checkInvariants()
    }

    @Test("A failed multi-block request rolls back what it took")
    func rollback() throws {
        var buddy = try BuddyAllocator(totalBytes: 64 * KiB)
        var pages: [BuddyAllocator.Block] = []
        for _ in 0 ..< 16 { pages += try buddy.allocate(size: 4 * KiB) }
        // Free a 32 KiB block at 0 and two lone pages: 40 KiB free, but only four 8 KiB pieces.
        try buddy.free(pages.filter { $0.offset < 32 * KiB || [0x9000, 0xB000].contains($0.offset) })
        #expect(buddy.freeBlocks.map(\.offset) == [0, 0x9000, 0xB000])
        // The 32 KiB block is taken, then no 8 KiB block is left: it is given back.
        #expect(throws: BuddyAllocatorError.outOfMemory(
            requested: 40 * KiB, alignment: 8 * KiB, available: 40 * KiB, largestFreeBlock: 32 * KiB)) {
            try buddy.allocate(size: 40 * KiB, alignment: 8 * KiB)
        }
        #expect(buddy.freeBlocks.map(\.offset) == [0, 0x9000, 0xB000])
        #expect(buddy.freeBlocks.map(\.order) == [3, 0, 0])
        #expect(buddy.availableBytes == 40 * KiB)
        buddy.checkInvariants()
    }

    @Test("Double free, duplicate and foreign blocks throw and change nothing")
    func doubleAndForeignFree() throws {
        var buddy = try BuddyAllocator(totalBytes: 1 * MiB)
        var other = try BuddyAllocator(totalBytes: 1 * MiB)
        let block = try #require(try buddy.allocate(size: 4 * KiB).first)
        let twin = try #require(try other.allocate(size: 4 * KiB).first)
        #expect(block.offset == twin.offset && block.order == twin.order)
        #expect(throws: BuddyAllocatorError.foreignBlock(twin)) { try buddy.free(twin) }
        #expect(throws: BuddyAllocatorError.notAllocated(block)) { try buddy.free([block, block]) }
        #expect(buddy.isAllocated(block))
        try buddy.free(block)
        #expect(throws: BuddyAllocatorError.notAllocated(block)) { try buddy.free(block) }
        #expect(buddy.availableBytes == 1 * MiB)
        #expect(BuddyAllocatorError.notAllocated(block).pluginErrno == .invalidArgument)
        buddy.checkInvariants()
        try other.free(twin)
    }

    @Test("allocateBlock: one block of a power-of-two size, or a clear refusal")
    func singleBlocks() throws {
        var buddy = try BuddyAllocator(totalBytes: 12 * MiB)
        var twin = buddy
        for size in [4 * KiB, 2 * MiB, 64 * KiB, 8 * MiB] {
            let block = try buddy.allocateBlock(size: size)
            #expect([block] == (try twin.allocate(size: size)).map { $0 }, "the block allocate gives")
            #expect(block.size == size && block.offset % size == 0)
        }
        #expect(throws: BuddyAllocatorError.invalidSize(size: 12 * KiB, minChunkSize: 4 * KiB)) { try buddy.allocateBlock(size: 12 * KiB) }
        #expect(throws: BuddyAllocatorError.invalidSize(size: 2 * KiB, minChunkSize: 4 * KiB)) { try buddy.allocateBlock(size: 2 * KiB) }
        #expect(throws: BuddyAllocatorError.exceedsCapacity(requested: 16 * MiB, totalBytes: 12 * MiB)) { try buddy.allocateBlock(size: 16 * MiB) }
        let available = buddy.availableBytes
        #expect(throws: BuddyAllocatorError.self) { try buddy.allocateBlock(size: 4 * MiB) }  // 8 MiB root taken
        #expect(buddy.availableBytes == available, "a refusal takes nothing")
        buddy.checkInvariants()
    }

    @Test("64 KiB minimum chunk")
    func sixtyFourKiBChunks() throws {
        var buddy = try BuddyAllocator(totalBytes: 4 * MiB, minChunkSize: 64 * KiB)
        #expect(buddy.maxOrder == 6)
        #expect(throws: BuddyAllocatorError.invalidSize(size: 4 * KiB, minChunkSize: 64 * KiB)) {
            try buddy.allocate(size: 4 * KiB)
        }
        let small = try buddy.allocate(size: 64 * KiB)
        #expect(small.map(\.offset) == [0x3F0000])
        #expect(small.map(\.order) == [0])
        let huge = try buddy.allocate(size: 2 * MiB)
        #expect(huge.map(\.offset) == [0])
        #expect(huge.map(\.order) == [5])
        #expect(buddy.availableBytes == 2 * MiB - 64 * KiB)
        // An alignment below the chunk means the chunk.
        #expect(try buddy.allocate(size: 128 * KiB, alignment: 4 * KiB).map(\.order) == [1])
        buddy.checkInvariants()
    }

    @Test("A size that is not a power of two is several roots, largest first")
    func roots() throws {
        var buddy = try BuddyAllocator(totalBytes: 12 * MiB)
        #expect(buddy.maxBlockSize == 8 * MiB)
        #expect(buddy.largestFreeBlock == 8 * MiB)
        #expect(buddy.freeBlocks.map(\.offset) == [0, 8 * MiB])
        let whole = try buddy.allocate(size: 12 * MiB)
        #expect(whole.map(\.offset) == [0, 8 * MiB])
        #expect(whole.map(\.size) == [8 * MiB, 4 * MiB])
        try buddy.free(whole)
        #expect(buddy.freeBlocks.map(\.offset) == [0, 8 * MiB])
        // Top-down starts in the last root.
        #expect(try buddy.allocate(size: 4 * KiB).map(\.offset) == [12 * MiB - 4 * KiB])
        buddy.checkInvariants()
    }

    @Test("Without an alignment, 3 MiB is a 2 MiB and a 1 MiB block")
    func defaultAlignment() throws {
        var buddy = try BuddyAllocator(totalBytes: 4 * MiB)
        let blocks = try buddy.allocate(size: 3 * MiB)
        #expect(blocks.map(\.size) == [2 * MiB, 1 * MiB])
        #expect(blocks.map(\.offset) == [2 * MiB, 1 * MiB])
        // The size rounds up to the alignment: 12 KiB in 8 KiB blocks is 16 KiB.
        let rounded = try buddy.allocate(size: 12 * KiB, alignment: 8 * KiB)
        #expect(rounded.map(\.size) == [16 * KiB])
        #expect(buddy.availableBytes == 1 * MiB - 16 * KiB)
    }

    @Test("Invalid requests and configurations are EINVAL with a clear message")
    func invalidArguments() throws {
        for (total, chunk) in [(1 * MiB, 2 * KiB), (1 * MiB, 12 * KiB), (0, 4 * KiB), (1 * MiB + 1, 4 * KiB)] {
            #expect(throws: BuddyAllocatorError.invalidConfiguration(totalBytes: total, minChunkSize: chunk)) {
                _ = try BuddyAllocator(totalBytes: total, minChunkSize: chunk)
            }
        }
        var buddy = try BuddyAllocator(totalBytes: 12 * MiB)
        let cases: [(UInt64, UInt64?, BuddyAllocatorError)] = [
            (0, nil, .invalidSize(size: 0, minChunkSize: 4 * KiB)),
            (4 * KiB + 1, nil, .invalidSize(size: 4 * KiB + 1, minChunkSize: 4 * KiB)),
            (16 * KiB, 12 * KiB, .invalidAlignment(alignment: 12 * KiB, maxBlockSize: 8 * MiB)),
            (16 * KiB, 16 * MiB, .invalidAlignment(alignment: 16 * MiB, maxBlockSize: 8 * MiB)),
            (16 * MiB, nil, .exceedsCapacity(requested: 16 * MiB, totalBytes: 12 * MiB)),
            (12 * MiB, 8 * MiB, .exceedsCapacity(requested: 16 * MiB, totalBytes: 12 * MiB)),
        ]
        for (size, alignment, expected) in cases {
            let error = #expect(throws: BuddyAllocatorError.self) {
                try buddy.allocate(size: size, alignment: alignment)
            }
            #expect(error == expected)
            #expect(error?.pluginErrno == .invalidArgument)
        }
        #expect(buddy.availableBytes == 12 * MiB)
        #expect(BuddyAllocatorError.invalidAlignment(alignment: 12 * KiB, maxBlockSize: 8 * MiB).description
            == "invalid alignment 12 KiB: must be a power of two of at most 8 MiB (the largest block)")
        // Through the ABI: out of memory travels as -ENOMEM, a bad request as -EINVAL.
        #expect(PluginErrno.status { _ = try buddy.allocate(size: 0) } == -EINVAL)
        var full = try BuddyAllocator(totalBytes: 4 * KiB)
        _ = try full.allocate(size: 4 * KiB)
        #expect(PluginErrno.status { _ = try full.allocate(size: 4 * KiB) } == -ENOMEM)
    }

    @Test("Random allocations and frees match a chunk-bitmap model", arguments: 0 ..< 40)
    func randomizedModel(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let chunk: UInt64 = Bool.random(using: &random) ? 4 * KiB : 64 * KiB
        let chunks = Int.random(in: 1 ... 700, using: &random)
        let placement: BuddyAllocator.Placement = Bool.random(using: &random) ? .topDown : .bottomUp
        var buddy = try BuddyAllocator(
            totalBytes: UInt64(chunks) * chunk, minChunkSize: chunk, placement: placement)
        var model = BuddyModel(chunks: chunks, chunk: chunk, topDown: placement == .topDown)
        var live: [BuddyAllocator.Block] = []
        var freed: [BuddyAllocator.Block] = []

        for _ in 0 ..< 300 {
            if live.isEmpty || Int.random(in: 0 ..< 10, using: &random) < 6 {
                let size = UInt64.random(in: 1 ... UInt64(min(chunks, 40)), using: &random) * chunk
                let maxShift = buddy.maxOrder
                let alignment: UInt64? = Bool.random(using: &random)
                    ? nil : chunk << UInt64(Int.random(in: 0 ... min(maxShift, 4), using: &random))
                let minBlock = alignment ?? (size & (0 &- size))
                let rounded = (size + minBlock - 1) / minBlock * minBlock
                guard rounded <= buddy.totalBytes else { continue }
                let expected = model.allocate(size: rounded, minBlock: minBlock)
                let outcome: Result<[BuddyAllocator.Block], BuddyAllocatorError>
                // A power-of-two request without an alignment is one block: allocateBlock
                // must give the very block allocate would.
                let single = alignment == nil && size.nonzeroBitCount == 1 && Bool.random(using: &random)
                do {
                    outcome = .success(single ? [try buddy.allocateBlock(size: size)] : try buddy.allocate(size: size, alignment: alignment))
                } catch {
                    outcome = .failure(error)
                }
                switch (outcome, expected) {
                case let (.success(blocks), predicted?):
                    guard blocks.map(\.offset) == predicted.map(\.offset),
                        blocks.map(\.size) == predicted.map(\.size)
                    else {
                        Issue.record("allocator returned \(blocks), the model \(predicted)")
                        return
                    }
                    for block in blocks {
                        #expect(block.size >= minBlock && block.offset % block.size == 0)
                        #expect(block.size == chunk << UInt64(block.order))
                    }
                    live += blocks
                case (.failure(.outOfMemory), nil):
                    break
                case let (.success(blocks), nil):
                    Issue.record("allocator returned \(blocks) where the model ran out")
                    return  // the two have diverged: stop this seed
                case let (.failure(error), _):
                    Issue.record("allocator failed with \(error); the model predicted \(String(describing: expected))")
                    return
                }
            } else if !freed.isEmpty && Int.random(in: 0 ..< 10, using: &random) == 0 {
                let block = freed.randomElement(using: &random)!
                if !live.contains(block) {
                    #expect(throws: BuddyAllocatorError.notAllocated(block)) { try buddy.free(block) }
                }
            } else {
                let block = live.remove(at: Int.random(in: 0 ..< live.count, using: &random))
                try buddy.free(block)
                model.release(offset: block.offset, size: block.size)
                freed.append(block)
            }
            #expect(buddy.availableBytes == buddy.totalBytes - live.reduce(0) { $0 + $1.size })
            #expect(buddy.availableBytes == model.freeBytes)
            #expect(buddy.allocatedBlockCount == live.count)
            buddy.checkInvariants()
        }
        // No two live blocks overlap (the model bitmap also checks this as it marks them).
        let sorted = live.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.offset + a.size <= b.offset) }

        try buddy.free(live)
        #expect(buddy.availableBytes == buddy.totalBytes)
        #expect(buddy.largestFreeBlock == buddy.maxBlockSize)
        // Everything merged back into the roots: one block per set bit of the size.
        #expect(buddy.freeBlocks.count == buddy.totalBytes.nonzeroBitCount)
        buddy.checkInvariants()
    }
}

/// The reference: one flag per chunk and a brute-force search for the best aligned window,
/// following drm_buddy_alloc_blocks (largest order that fits the rest first, smaller down to
/// the minimum block; the highest free window for top-down, the lowest for bottom-up).
private struct BuddyModel {
    var used: [Bool]
    let chunk: UInt64
    let topDown: Bool

    init(chunks: Int, chunk: UInt64, topDown: Bool) {
        used = Array(repeating: false, count: chunks)
        self.chunk = chunk
        self.topDown = topDown
    }

    var freeBytes: UInt64 { UInt64(used.filter { !$0 }.count) * chunk }

    mutating func allocate(size: UInt64, minBlock: UInt64) -> [(offset: UInt64, size: UInt64)]? {
        var remaining = size
        var blockSize = UInt64(1) << (63 - remaining.leadingZeroBitCount)
        var result: [(offset: UInt64, size: UInt64)] = []
        while remaining > 0 {
            blockSize = min(blockSize, UInt64(1) << (63 - remaining.leadingZeroBitCount))
            while true {
                if let offset = bestWindow(size: blockSize) {
                    mark(offset: offset, size: blockSize, used: true)
                    result.append((offset, blockSize))
                    remaining -= blockSize
                    break
                }
                if blockSize == minBlock {
                    for block in result { mark(offset: block.offset, size: block.size, used: false) }
                    return nil
                }
                blockSize /= 2
            }
        }
        return result
    }

    mutating func release(offset: UInt64, size: UInt64) { mark(offset: offset, size: size, used: false) }

    /// The preferred aligned window of `size` whose chunks are all free.
    private func bestWindow(size: UInt64) -> UInt64? {
        let width = Int(size / chunk)
        guard width <= used.count else { return nil }
        var starts = Array(stride(from: 0, through: used.count - width, by: width))
        if topDown { starts.reverse() }
        for start in starts where !used[start ..< start + width].contains(true) {
            return UInt64(start) * chunk
        }
        return nil
    }

    private mutating func mark(offset: UInt64, size: UInt64, used flag: Bool) {
        let first = Int(offset / chunk)
        for index in first ..< first + Int(size / chunk) {
            precondition(used[index] != flag, "model: overlapping blocks")
            used[index] = flag
        }
    }
}
