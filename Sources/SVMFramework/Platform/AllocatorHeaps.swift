import CSVMPlatform

/// Whether an address is in a heap of the C allocator (glibc's malloc): the `[heap]` of
/// `brk`, or one of the heaps of malloc's other arenas (threads other than the first get
/// those).
///
/// Why the mirror cares: such pages hold, side by side, the program's small blocks, malloc's
/// own metadata and the framework's objects (Swift allocates with malloc). If the mirror
/// registered them, the handler thread's own allocations could fault on a missing page only
/// it can serve; if it migrated them, the thread that owns the migration would fault on its
/// own objects. So heap memory is used in place, never mirrored or migrated (see the CPU
/// mirror article). Large blocks (`mmap`ed by malloc, 128 KiB and up by default) are
/// mappings of their own, not heaps: they migrate like any anonymous memory.
enum AllocatorHeaps {
    /// glibc's `HEAP_MAX_SIZE` on 64-bit systems: twice `DEFAULT_MMAP_THRESHOLD_MAX` (32 MiB).
    /// Every arena heap starts at a multiple of it (`heap_for_ptr` in `arena.c`).
    static let arenaHeapSize: UInt64 = 64 << 20

    /// Whether `address`, in `area`, belongs to an allocator heap.
    static func contains(_ address: UInt64, in area: VirtualMemoryArea) -> Bool {
        if area.path == "[heap]" { return true }
        guard area.kind == .anonymousPrivate, area.path.isEmpty else { return false }
        let heapStart = address & ~(arenaHeapSize - 1)
        guard heapStart >= UInt64(area.start) else { return false }
        return looksLikeHeapInfo(at: heapStart, covering: address - heapStart)
    }

    /// Whether the words at `start` read as glibc's `heap_info`: the arena pointer, the
    /// previous heap (none, or another heap start), the size in use and the size made
    /// read-write, which covers `offset`. Read with `process_vm_readv`, which fails on an
    /// unmapped page instead of crashing; a missing page of a mirror that serves kernel-mode
    /// faults makes it wait for the mirror, so never call this holding a lock its handler
    /// takes, or from the handler thread.
    private static func looksLikeHeapInfo(at start: UInt64, covering offset: UInt64) -> Bool {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let read = withUnsafeMutableBytes(of: &words) { svm_process_vm_read($0.baseAddress, start, $0.count) }
        guard read == MemoryLayout.size(ofValue: words) else { return false }
        let (arena, previous, size, readWriteSize) = words
        return arena != 0 && arena % 8 == 0
            && previous % arenaHeapSize == 0
            && readWriteSize > 0 && readWriteSize <= arenaHeapSize && readWriteSize % 4096 == 0
            && size <= readWriteSize && offset < readWriteSize
    }
}
