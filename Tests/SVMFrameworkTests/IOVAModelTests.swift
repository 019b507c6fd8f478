import Glibc
@testable import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// The IOVA model (``DMAMapping``): a binding of system memory, or of a peer's memory over
/// PCIe, is DMA-mapped through the device's IOVA space — one allocation, one link per
/// contiguous run (holes left unlinked), one sync — or page by page when the allocation
/// fails; an invalidation unlinks it under the notifier lock and frees it after.
@Suite("IOVA model") struct IOVAModelTests {
    static let chunk = 2 << 20

    func work(allocs: Int = 0, frees: Int = 0, failedAllocs: Int = 0, links: Int = 0, unlinks: Int = 0, syncs: Int = 0,
              pageMaps: Int = 0, pageUnmaps: Int = 0) -> DMAWork {
        var work = DMAWork()
        (work.allocs, work.frees, work.failedAllocs, work.links, work.unlinks) = (allocs, frees, failedAllocs, links, unlinks)
        (work.syncs, work.pageMaps, work.pageUnmaps) = (syncs, pageMaps, pageUnmaps)
        return work
    }

    /// The DMA mapping of `device`'s binding of the range containing `address`.
    func mapping(_ f: SimDeviceFixture, _ address: UInt64, on device: SVMDevice) throws -> DMAMapping {
        let range = try #require(f.context.space.range(containing: address))
        return try #require(range.pages(ifExistFor: device.deviceID)?.dmaMapping)
    }

    @Test("A contiguous 2 MiB range of system memory: one allocation, one link, one sync; its invalidation one unlink and one free")
    func contiguousRange() throws {
        let f = try SimDeviceFixture(memory: "8M", policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 3)
        let (bytes, _) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 3))
        #expect(f.device.iova.work == work(allocs: 1, links: 1, syncs: 1))
        let dma = try mapping(f, buffer.address, on: f.device)
        let iova = try #require(dma.deviceAddress(of: buffer.address))
        #expect(iova % UInt64(Self.chunk) == 0, "naturally aligned: one large page-table entry")
        #expect(dma.deviceAddress(of: buffer.address + 4096 * 7) == iova + 4096 * 7)
        #expect(f.device.iova.liveAllocations == 1)
        // Dropping the pages invalidates the binding: unlinked under the lock, freed after.
        madvise(buffer.base, Self.chunk, MADV_DONTNEED)
        _ = try f.deviceRead(buffer.address, 64)  // waits until the mirror handled the event
        #expect(f.device.iova.work.unlinks == 1 && f.device.iova.work.frees == 1)
        #expect(f.device.iova.liveAllocations == 1, "the new binding's")
    }

    /// Memory the mirror does not watch (shared) is bound with its holes: one link per run.
    @Test("A fragmented range: one link per run of present pages, holes unlinked, still one sync")
    func fragmentedRange() throws {
        let f = try SimDeviceFixture(memory: "8M", policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk, shared: true)
        // Every other 64 KiB present: 16 runs and 16 holes.
        for run in stride(from: 0, to: Self.chunk, by: 128 << 10) { memset(buffer.base + run, 7, 64 << 10) }
        let (bytes, _) = try f.deviceRead(buffer.address, 64)
        #expect(bytes.allSatisfy { $0 == 7 })
        #expect(f.device.iova.work == work(allocs: 1, links: 16, syncs: 1))
        let dma = try mapping(f, buffer.address, on: f.device)
        #expect(dma.runs.count == 16)
        #expect(dma.deviceAddress(of: buffer.address + (64 << 10)) == nil, "a hole is not mapped")
        #expect(dma.deviceAddress(of: buffer.address + (128 << 10)) != nil)
    }

    @Test("When the IOVA allocation fails (a full aperture, or none), the binding maps page by page", arguments: [UInt64(64 << 10), 0])
    func perPageFallback(aperture: UInt64) throws {
        let f = try SimDeviceFixture(memory: "8M", policy: .systemMemory)
        defer { f.shutdown() }
        #expect(f.device.iova.setAperture(bytes: aperture))
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 5)
        let (bytes, _) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 5), "the data is the same either way")
        #expect(f.device.iova.work == work(failedAllocs: 1, pageMaps: 512))
        let dma = try mapping(f, buffer.address, on: f.device)
        #expect(dma.deviceAddress(of: buffer.address + 4096) == buffer.address + 4096, "a direct mapping")
        madvise(buffer.base, Self.chunk, MADV_DONTNEED)
        _ = try f.deviceRead(buffer.address, 64)
        #expect(f.device.iova.work.pageUnmaps == 512 && f.device.iova.work.frees == 0)
    }

    /// Over PCIe the importer reaches the owner's memory through its BAR, which its IOMMU
    /// maps: one run, the owner's block. A fabric address needs no IOVA, nor does local memory.
    @Test("A peer's memory mapped over PCIe takes one allocation, link and sync; over the fabric none", arguments: ["pcie", "fabric"])
    func peerMappings(topology: String) throws {
        let f = try SimDeviceFixture(devices: 2, memory: "8M", policy: .accessPeerInPlace, interconnect: ["topology": topology])
        defer { f.shutdown() }
        let (a, b) = (f.devices[0], f.devices[1])
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 9)
        _ = try f.deviceRead(buffer.address, 64, on: a)
        #expect(a.iova.work.isEmpty, "local device memory is not DMA-mapped")
        let (bytes, _) = try f.deviceRead(buffer.address, Self.chunk, on: b)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 9) && f.count("peerMappings") == 1)
        guard topology == "pcie" else {
            #expect(b.iova.work.isEmpty)
            return
        }
        #expect(b.iova.work == work(allocs: 1, links: 1, syncs: 1))
        // The CPU takes the data home: the importer's mapping is unlinked and freed.
        #expect(buffer.base.load(as: UInt8.self) == bytes[0])
        #expect(b.iova.work.unlinks == 1 && b.iova.work.frees == 1 && b.iova.liveAllocations == 0)
    }

    @Test("The aperture cannot change while it holds allocations")
    func apertureInUse() throws {
        let f = try SimDeviceFixture(memory: "8M", policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 1)
        _ = try f.deviceRead(buffer.address, 64)
        #expect(!f.device.iova.setAperture(bytes: 1 << 30))
        #expect(f.device.iova.apertureBytes == IOVASpace.defaultApertureBytes)
        #expect(!IOVASpace(deviceID: 9).setAperture(bytes: 5000), "not a multiple of a page")
    }

    /// What the counters let a user reproduce: 512 pages mapped one by one cost about 394 µs
    /// of driver time more than one allocation, 512 links and one sync (the dma-map IOVA
    /// series' 552 → 158 µs), and a contiguous range costs one link.
    @Test("Simulated time charges a binding's DMA work to its fault batch")
    func simulatedCost() {
        func faultTime(_ work: DMAWork) -> (total: UInt64, dma: UInt64) {
            let timeline = SimulatedTimeline(parameters: TimingParameters())
            timeline.addDevice(id: 1, name: "d")
            timeline.kernel("k", on: 1, result: KernelResult(), activity: [
                .deviceFault(deviceID: 1, address: 0x1000, access: .read, batch: 1), .dmaMapping(deviceID: 1, work: work),
            ])
            let statistics = timeline.deviceStatistics[0]
            #expect(statistics.dma == work)
            return (statistics.faultServiceNanoseconds, statistics.dmaNanoseconds)
        }
        let perPage = faultTime(work(failedAllocs: 1, pageMaps: 512))
        let batched = faultTime(work(allocs: 1, links: 512, syncs: 1))
        let contiguous = faultTime(work(allocs: 1, links: 1, syncs: 1))
        #expect(perPage.dma == 500 + 512 * 900 && batched.dma == 500 + 512 * 130 + 1_000 && contiguous.dma == 1_630)
        #expect(perPage.total - batched.total == 393_240)
        #expect(contiguous.total == TimingParameters().faultServiceNanoseconds + 1_630)
    }
}
