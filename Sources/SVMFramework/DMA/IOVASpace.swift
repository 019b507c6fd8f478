import SVMPluginKit

/// One device's I/O virtual address space: the IOMMU domain that the kernel's dma-map IOVA
/// API (`dma_iova_try_alloc` / `dma_iova_link` / `dma_iova_sync` / `dma_iova_unlink` /
/// `dma_iova_free`) allocates from, modelled so that a binding's DMA work can be counted and
/// timed (see ``DMAMapping``).
///
/// The aperture is a buddy allocator of IOVA space: allocations are naturally aligned, so a
/// 2 MiB range gets a 2 MiB-aligned IOVA the device can map with one large page-table entry
/// whatever pages back it. An allocation fails when the aperture cannot hold it (or has no
/// bytes: no IOMMU), and the binding then maps page by page — the kernel's fallback.
///
/// What is modelled and what is not: the IOVA addresses, allocations, links and syncs are
/// real bookkeeping, and their counts go into statistics and simulated time; but the
/// plugins are not given the IOVAs (a bind piece carries the address a device reaches the
/// data at: system memory by its virtual address, a peer's memory by its offset), since no
/// simulated IOMMU translates them.
public final class IOVASpace: Sendable {
    public let deviceID: UInt64
    /// A 47-bit aperture, the IOVA width an x86 IOMMU gives a device with 4-level tables
    /// (48 bits, half kept for the kernel's own use): never the limit in practice.
    public static let defaultApertureBytes: UInt64 = 1 << 47

    private struct State {
        /// `nil`: an aperture of 0 bytes, no IOMMU; every allocation fails.
        var aperture: BuddyAllocator?
        var apertureBytes: UInt64
        var live = 0
        var work = DMAWork()
    }

    /// A leaf lock: taken with the notifier lock held (links, unlinks) or without (alloc, free).
    private let state: Locked<State>

    init(deviceID: UInt64, apertureBytes: UInt64 = IOVASpace.defaultApertureBytes) {
        self.deviceID = deviceID
        state = Locked(State(aperture: Self.aperture(apertureBytes), apertureBytes: apertureBytes))
    }

    private static func aperture(_ bytes: UInt64) -> BuddyAllocator? {
        bytes == 0 ? nil : try? BuddyAllocator(totalBytes: bytes, placement: .bottomUp)
    }

    /// The aperture's size in bytes (0: no IOMMU, every binding maps page by page).
    public var apertureBytes: UInt64 { state.withLock { $0.apertureBytes } }

    /// Replaces the aperture with one of `bytes` (a multiple of 4096; 0 for none). Only while
    /// nothing is allocated in it; returns whether it was replaced.
    @discardableResult
    public func setAperture(bytes: UInt64) -> Bool {
        guard bytes % 4096 == 0 else { return false }
        return state.withLock { state in
            guard state.live == 0 else { return false }
            state.aperture = Self.aperture(bytes)
            state.apertureBytes = bytes
            return true
        }
    }

    /// What this device's bindings did so far.
    public var work: DMAWork { state.withLock { $0.work } }

    /// Allocations not freed yet.
    public var liveAllocations: Int { state.withLock { $0.live } }

    /// An IOVA block of `size` bytes (a power of two of at least 4096, as ranges are),
    /// aligned to its size; `nil` when the aperture cannot hold it. Called with no lock held
    /// (`dma_iova_try_alloc` may sleep).
    func allocate(size: UInt64) -> IOVAAllocation? {
        state.withLock { state in
            // In place: a copy of the allocator taken out and stored back made every
            // allocation copy its free lists.
            guard size.nonzeroBitCount == 1, let block = try? state.aperture?.allocateBlock(size: size) else {
                state.work.failedAllocs += 1
                return nil
            }
            state.live += 1
            state.work.allocs += 1
            return IOVAAllocation(block: block)
        }
    }

    /// Frees an allocation whose runs are unlinked.
    func free(_ allocation: IOVAAllocation) {
        state.withLock { state in
            try? state.aperture?.free(allocation.block)
            state.live -= 1
            state.work.frees += 1
        }
    }

    /// Counts DMA work done on this space (links, syncs, unlinks, page maps).
    func count(_ work: DMAWork) {
        state.withLock { $0.work += work }
    }
}

/// One IOVA allocation: one block of the aperture.
struct IOVAAllocation: Sendable, Hashable {
    let block: BuddyAllocator.Block

    /// The first IOVA of the allocation.
    var base: UInt64 { block.offset }
}
