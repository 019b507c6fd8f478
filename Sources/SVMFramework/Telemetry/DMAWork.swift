/// Counts of the DMA-mapping operations of the IOVA model (see ``IOVASpace``): what one
/// binding did, or what a device did in total.
public struct DMAWork: Sendable, Hashable, Codable {
    /// IOVA allocations made (`dma_iova_try_alloc` that succeeded), and freed.
    public var allocs = 0
    public var frees = 0
    /// Allocations refused (the aperture is full, or there is no IOMMU): the binding then
    /// mapped page by page.
    public var failedAllocs = 0
    /// Contiguous runs linked into an allocation (`dma_iova_link`), and unlinked.
    public var links = 0
    public var unlinks = 0
    /// IOTLB syncs after the links of a binding (`dma_iova_sync`): one per binding.
    public var syncs = 0
    /// Pages mapped one by one (`dma_map_page`, each with its own IOTLB work): the fallback
    /// when allocation fails; and unmapped.
    public var pageMaps = 0
    public var pageUnmaps = 0

    public init() {}

    public static func += (total: inout Self, work: Self) {
        total.allocs += work.allocs
        total.frees += work.frees
        total.failedAllocs += work.failedAllocs
        total.links += work.links
        total.unlinks += work.unlinks
        total.syncs += work.syncs
        total.pageMaps += work.pageMaps
        total.pageUnmaps += work.pageUnmaps
    }

    /// Whether nothing was done.
    public var isEmpty: Bool { self == Self() }
}
