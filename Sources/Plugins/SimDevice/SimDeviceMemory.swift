#if canImport(Glibc)
import Glibc
#endif
import SVMPluginKit
import Synchronization

/// A simulated device's memory (its VRAM): host memory, handed out by a buddy allocator.
///
/// The bytes are working memory declared private to the host
/// (``HostServices/mapPrivateMemory(size:reserve:)``) with `MAP_NORESERVE`,
/// so a device of several GiB costs host RAM only for the pages the simulation has touched.
/// With `zero-copy` on (the default) the memory is declared host memory (ABI 1.4): the host
/// moves pages in and out, fills every page of an allocation before the device uses it and
/// leaves none in a freed block. With it off, like VRAM, a freed block keeps its bytes and its
/// pages: the next owner finds whatever was there (the host always writes an allocation
/// before it reads it), and a copy into it does not pay host page faults again. Allocation
/// follows `drm_buddy`: power-of-two blocks of at least the min page size, naturally
/// aligned, top-down.
///
/// ## Locking
/// `state` (the allocator, the live blocks and the lost ones) is behind its mutex, and so
/// are the host's copies, so that a reset never wipes a block in the middle of one. Kernels
/// reach the bytes only through the page table, whose lock orders them against binds and
/// zaps (a reset zaps everything after wiping).
final class SimDeviceMemory: @unchecked Sendable {
    /// The first byte; valid from init until ``unmap()``.
    let base: UnsafeMutableRawPointer
    /// The bytes of device memory.
    let size: UInt64
    let minPageSize: UInt64
    /// Told of the mapping, and of its end.
    private let host: HostServices

    private struct State {
        var allocator: BuddyAllocator
        /// The live allocations by offset: an allocation is always one buddy block.
        var blocks = AddressTable<BuddyAllocator.Block>()
        /// Live allocations whose contents a reset destroyed: reading them fails with `EIO`
        /// until they are written whole again or freed.
        var lost = AddressSet()
    }

    private let state: Locked<State>

    /// Maps `size` bytes and prepares the allocator.
    ///
    /// - Throws: `PluginErrno.invalidArgument` for a size the allocator refuses,
    ///   `.outOfMemory` when the host cannot reserve the address space.
    init(size: UInt64, minPageSize: UInt64, host: HostServices) throws(PluginErrno) {
        let allocator: BuddyAllocator
        do {
            allocator = try BuddyAllocator(totalBytes: size, minChunkSize: minPageSize, placement: .topDown)
        } catch {
            throw .invalidArgument
        }
        guard let length = Int(exactly: size) else { throw .invalidArgument }
        guard let address = host.mapPrivateMemory(size: length, reserve: false) else { throw .outOfMemory }
        self.host = host
        base = address
        self.size = size
        self.minPageSize = minPageSize
        state = Locked(State(allocator: allocator))
    }

    /// Returns the bytes to the host. No other member may be used afterwards.
    func unmap() {
        host.unmapPrivateMemory(base, size: Int(size))
    }

    /// Bytes allocated now.
    ///
    /// - Complexity: O(1).
    var usedBytes: UInt64 {
        state.withLock { $0.allocator.totalBytes - $0.allocator.availableBytes }
    }

    /// Whether `[offset, offset + length)` lies inside the memory.
    func contains(offset: UInt64, length: UInt64) -> Bool {
        offset <= size && length <= size - offset
    }

    /// Allocates one naturally aligned block of `size` bytes and returns its offset.
    ///
    /// - Throws: `.invalidArgument` unless `size` is a power of two between the min page
    ///   size and the memory size; `.outOfMemory` when no free block is large enough.
    /// - Complexity: O(log size) amortized.
    func allocate(size requested: UInt64) throws(PluginErrno) -> UInt64 {
        guard requested.nonzeroBitCount == 1, requested >= minPageSize, requested <= size else {
            throw .invalidArgument
        }
        return try state.withLock { (state) throws(PluginErrno) -> UInt64 in
            let block: BuddyAllocator.Block
            do throws(BuddyAllocatorError) {
                block = try state.allocator.allocateBlock(size: requested)
            } catch {
                throw error.pluginErrno
            }
            state.blocks[block.offset] = block
            return block.offset
        }
    }

    /// Frees the allocation at `offset` of `size` bytes; false (and nothing changes) when
    /// there is no such allocation.
    @discardableResult
    func free(offset: UInt64, size: UInt64) -> Bool {
        state.withLock { state -> Bool in
            guard let block = state.blocks[offset], block.size == size else { return false }
            state.blocks[offset] = nil
            state.lost.remove(offset)
            // Cannot fail: the block is live and from this allocator.
            _ = try? state.allocator.free(block)
            return true
        }
    }

    /// Copies `length` bytes of host memory into the allocation holding `offset`. Writing a
    /// lost allocation whole makes it readable again.
    ///
    /// - Throws: `.invalidArgument` unless the bytes lie inside one allocation.
    func copy(into offset: UInt64, from source: UnsafeRawPointer, length: UInt64) throws(PluginErrno) {
        let block = try allocation(holding: offset, length: length)
        // Under the lock: a reset must not wipe the block halfway through the copy and
        // then see it marked readable.
        state.withLock { state in
            (base + Int(offset)).copyMemory(from: source, byteCount: Int(length))
            if block.offset == offset && block.size == length { state.lost.remove(offset) }
        }
    }

    /// Copies `length` bytes of the allocation holding `offset` into host memory.
    ///
    /// - Throws: `.invalidArgument` unless the bytes lie inside one allocation; `.ioError`
    ///   when a reset destroyed its contents.
    func copy(from offset: UInt64, to destination: UnsafeMutableRawPointer, length: UInt64) throws(PluginErrno) {
        let block = try allocation(holding: offset, length: length)
        // Under the lock: a reset must not wipe the block while it is read.
        let lost = state.withLock { state -> Bool in
            guard !state.lost.contains(block.offset) else { return true }
            destination.copyMemory(from: base + Int(offset), byteCount: Int(length))
            return false
        }
        if lost { throw .ioError }
    }

    /// A reset: every live allocation's bytes are overwritten with a pattern (so that data
    /// read from it by mistake is recognizably wrong) and reading it fails from now on.
    /// Returns the bytes lost.
    func loseContents() -> UInt64 {
        state.withLock { state -> UInt64 in
            var bytes: UInt64 = 0
            for block in state.blocks.values {
                (base + Int(block.offset)).initializeMemory(as: UInt8.self, repeating: 0xDE, count: Int(block.size))
                state.lost.insert(block.offset)
                bytes += block.size
            }
            return bytes
        }
    }

    /// The live allocation that holds `[offset, offset + length)`: the ABI's "-EINVAL
    /// outside an allocation", which also catches a copy after free.
    ///
    /// - Complexity: O(log size): one lookup per block order.
    private func allocation(holding offset: UInt64, length: UInt64) throws(PluginErrno) -> (offset: UInt64, size: UInt64) {
        guard contains(offset: offset, length: length) else { throw .invalidArgument }
        let found = state.withLock { state -> (offset: UInt64, size: UInt64)? in
            var blockSize = minPageSize
            while blockSize <= size {
                let start = offset & ~(blockSize - 1)
                if let block = state.blocks[start], block.size == blockSize {
                    return length <= block.range.upperBound - offset ? (start, blockSize) : nil
                }
                blockSize <<= 1
            }
            return nil
        }
        guard let found else { throw .invalidArgument }
        return found
    }
}
