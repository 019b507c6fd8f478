import SVMPluginKit

/// How one device reaches the pages of one binding for DMA (the `dma_iova_state` and
/// addresses of a `drm_gpusvm_pages`): the IOVA model's steps, each at the point the kernel's
/// dma-map IOVA API allows it.
///
/// 1. ``prepare(size:runs:in:)`` — with no lock held: allocate an IOVA block for the whole
///    binding (`dma_iova_try_alloc`, which may sleep); if that fails, the binding maps page
///    by page.
/// 2. ``linkLocked()`` — under the notifier lock held for reading, after the sequence
///    check: link each contiguous run at its offset (`dma_iova_link`; holes are left
///    unlinked), then one IOTLB sync for all of them (`dma_iova_sync`). Page by page: one map
///    per page, each with its own IOTLB work.
/// 3. ``unlinkLocked()`` — under the notifier lock held for writing (an invalidation)
///    or the commit's own serialization (a rebind): unlink the runs, or unmap the pages.
/// 4. ``free()`` — after the lock is dropped: give the IOVA block back (`dma_iova_free`).
///
/// A run is contiguous in the memory the device reaches: present system pages next to each
/// other (this framework's devices reach system memory by virtual address, so the process's
/// page tables stand in for the physical layout), or a peer's whole device-memory block.
struct DMAMapping: Sendable {
    let space: IOVASpace
    /// The binding's first byte (in the memory the runs are in) and its size.
    let start: UInt64
    let size: UInt64
    /// The contiguous runs to map, inside `start ..< start + size`.
    let runs: [AddressInterval]
    /// The IOVA block; `nil`: mapped page by page.
    let allocation: IOVAAllocation?

    /// Step 1: allocates the IOVA for `size` bytes at `start` whose data is in `runs`. No
    /// lock may be held.
    static func prepare(start: UInt64, size: UInt64, runs: [AddressInterval], in space: IOVASpace) -> DMAMapping {
        DMAMapping(space: space, start: start, size: size, runs: runs, allocation: space.allocate(size: size))
    }

    private var pages: Int { runs.reduce(0) { $0 + Int($1.size / 4096) } }

    /// What the allocation step did (for a binding's record: one alloc, or one failed).
    private var allocationWork: DMAWork {
        var work = DMAWork()
        if allocation != nil { work.allocs = 1 } else { work.failedAllocs = 1 }
        return work
    }

    /// Step 2: links every run and syncs once (or maps every page). The caller holds the
    /// notifier lock for reading (and asserts it: this layer is below the notifier's) and
    /// has checked the sequence. Returns the binding's whole work, allocation included, for
    /// the activity log.
    func linkLocked() -> DMAWork {
        var work = DMAWork()
        if allocation != nil {
            work.links = runs.count
            work.syncs = runs.isEmpty ? 0 : 1
        } else {
            work.pageMaps = pages
        }
        space.count(work)
        work += allocationWork
        return work
    }

    /// Step 3: unlinks every run (or unmaps every page). The caller holds the notifier lock
    /// for writing, or is the commit replacing this binding (the device's old binding was
    /// zapped first, so nothing uses these addresses).
    func unlinkLocked() {
        var work = DMAWork()
        if allocation != nil { work.unlinks = runs.count } else { work.pageUnmaps = pages }
        space.count(work)
    }

    /// Step 4: frees the IOVA block, after ``unlinkLocked()`` and with the lock dropped; or
    /// after step 1 alone, when the commit did not happen.
    func free() {
        if let allocation { space.free(allocation) }
    }

    /// The address the device uses for the byte at `address` (inside a run): its IOVA, or,
    /// mapped page by page, the address itself (a direct mapping). `nil` in a hole.
    func deviceAddress(of address: UInt64) -> UInt64? {
        guard runs.contains(where: { $0.contains(address) }) else { return nil }
        return allocation.map { $0.base + (address - start) } ?? address
    }
}
