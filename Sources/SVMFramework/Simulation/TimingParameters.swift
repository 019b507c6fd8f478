/// What the host side of a simulated system costs: the driver's fault service, the copy
/// engines that migrate, the link, and the CPU. The device's own execution is timed by its
/// plugin (SimDevice's options).
public struct TimingParameters: Sendable, Hashable, Codable {
    /// Host ↔ device.
    public var link = LinkParameters.pcieGen4x16
    /// Driver time to take one batch of replayable faults and decide what to do, before any
    /// data moves: 45 µs, the far-fault service latency GPGPU-Sim UVMSmart is configured
    /// with.
    public var faultServiceNanoseconds: UInt64 = 45_000
    /// Copy engines per device, each moving one migration at a time: two, an assumption
    /// (discrete GPUs have one to a few copy/blitter engines).
    public var copyEngines = 2
    /// One copy engine's bandwidth: as fast as a PCIe Gen4 x16 link, so the link limits.
    public var copyEngineBytesPerSecond = 31.5e9
    /// Whose copy engines move a direct migration between two devices: the source's, the
    /// kernel's default (`source_peer_migrates`: the source reads its own memory and writes
    /// the peer's), or the destination's.
    public var peerCopyEngine = PeerCopyEngine.source

    public enum PeerCopyEngine: String, Sendable, Hashable, Codable, CaseIterable {
        case source, destination
    }

    /// What the DMA mapping of a binding costs the driver (see ``DMAMappingCosts``).
    public var dma = DMAMappingCosts()

    /// A CPU fault that migrates a range back, before its copy: 20 µs, an assumption of
    /// the order the kernel's `migrate_to_ram` and this framework's `bench fault` show.
    public var cpuFaultNanoseconds: UInt64 = 20_000
    /// What one CPU thread touches per second: 10 GB/s, an assumption of one core's
    /// streaming bandwidth.
    public var cpuBytesPerSecond = 10e9

    public init() {}
}

/// Driver time for the IOVA model's steps (see ``DMAMapping``), charged to the fault whose
/// binding did them. Assumptions, chosen so that mapping the 512 pages of a 2 MiB range one
/// by one costs about 394 µs more than one allocation, 512 links and one sync: the
/// difference the dma-map IOVA series reported for a 2 MiB GPU fault (552 → 158 µs of CPU
/// time), most of which was the IOTLB work each page's own mapping did.
public struct DMAMappingCosts: Sendable, Hashable, Codable {
    /// One IOVA allocation (`dma_iova_try_alloc`), or a failed one.
    public var allocNanoseconds: UInt64 = 500
    /// One contiguous run linked (`dma_iova_link`): its IOMMU page-table entries.
    public var linkNanoseconds: UInt64 = 130
    /// One IOTLB sync after a binding's links (`dma_iova_sync`).
    public var syncNanoseconds: UInt64 = 1_000
    /// One page mapped on its own (`dma_map_page`), its IOTLB work included.
    public var pageMapNanoseconds: UInt64 = 900

    public init() {}

    /// The driver time of `work`.
    public func nanoseconds(_ work: DMAWork) -> UInt64 {
        UInt64(work.allocs + work.failedAllocs) * allocNanoseconds + UInt64(work.links) * linkNanoseconds
            + UInt64(work.syncs) * syncNanoseconds + UInt64(work.pageMaps) * pageMapNanoseconds
    }
}
