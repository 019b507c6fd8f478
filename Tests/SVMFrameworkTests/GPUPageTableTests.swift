import SVMTestSupport
import Testing

@testable import SVMPluginKit

private let KiB: UInt64 = 1024
private let MiB: UInt64 = 1024 * 1024
private typealias Target = GPUPageTable.Target

@Suite("GPU page table")
struct GPUPageTableTests {
    @Test("Map, translate and unmap at 4 KiB, 64 KiB and 2 MiB")
    func eachGranularity() throws {
        var table = GPUPageTable()
        try table.map(
            virtualAddress: 0x1000, size: 4 * KiB, pageSize: .size4K,
            target: Target(address: 0x5000, linkProtocol: .localVRAM))
        try table.map(
            virtualAddress: 0x10000, size: 64 * KiB, pageSize: .size64K,
            target: Target(address: 0x40000, linkProtocol: .pciePeerToPeer, atomicAllowed: false))
        try table.map(
            virtualAddress: 0x20_0000, size: 2 * MiB, pageSize: .size2M,
            target: Target(address: 0x60_0000, linkProtocol: .system, writable: false))

        let small = try #require(table.translate(0x1123))
        #expect(small.address == 0x5123)
        #expect(small.leafSize == .size4K && small.leafStart == 0x1000)
        #expect(small.linkProtocol == .localVRAM && small.writable && small.atomicAllowed)
        let medium = try #require(table.translate(0x1_FFFF))
        #expect(medium.address == 0x4_FFFF)
        #expect(medium.leafRange == 0x10000 ..< 0x20000)
        #expect(medium.linkProtocol == .pciePeerToPeer && medium.writable && !medium.atomicAllowed)
        let huge = try #require(table.translate(0x3F_FFFF))
        #expect(huge.address == 0x7F_FFFF)
        #expect(huge.leafSize == .size2M && !huge.writable)
        // Around the leaves: device faults.
        for va: UInt64 in [0, 0x2000, 0xF000, 0x20000, 0x1F_F000, 0x40_0000, GPUPageTable.addressLimit] {
            #expect(table.translate(va) == nil)
        }
        #expect(table.mappedBytes == 4 * KiB + 64 * KiB + 2 * MiB)
        #expect(GPUPageTable.LeafSize.allCases.map { table.leafCount($0) } == [1, 1, 1])
        #expect(table.leaves().map(\.virtualAddress) == [0x1000, 0x10000, 0x20_0000])
        #expect(table.leaves(in: 0x1_8000 ..< 0x1_9000).map(\.range) == [0x10000 ..< 0x20000])

        #expect(try table.unmap(0x10000 ..< 0x20000) == 64 * KiB)
        #expect(table.translate(0x10000) == nil && table.leafCount(.size64K) == 0)
        #expect(try table.unmap(0x20_0000 ..< 0x40_0000) == 2 * MiB)
        #expect(try table.unmap(0 ..< 0x2000) == 4 * KiB)
        #expect(table.isEmpty && table.mappedBytes == 0 && table.leafCount == 0)
    }

    @Test("A mapping of many leaves gets consecutive targets; scattered targets map one per leaf")
    func multiLeafMappings() throws {
        var table = GPUPageTable()
        try table.map(
            virtualAddress: 0x7F00_0000_0000, size: 256 * KiB, pageSize: .size64K,
            target: Target(address: 0x1_0000_0000, linkProtocol: .localVRAM))
        #expect(table.leafCount(.size64K) == 4)
        #expect(table.translate(0x7F00_0003_0010)?.address == 0x1_0003_0010)
        let pages: [UInt64] = [0x9000, 0x3000, 0x7000]
        try table.map(
            virtualAddress: 0x1000, pageSize: .size4K,
            targets: pages.map { Target(address: $0, linkProtocol: .system) })
        #expect([0x1000, 0x2000, 0x3FFF].map { table.translate($0)?.address } == [0x9000, 0x3000, 0x7FFF])
        #expect(table.mappedBytes == 256 * KiB + 12 * KiB)
    }

    @Test("Misaligned and out-of-range inputs are rejected with clear errors, changing nothing")
    func misalignedInputs() throws {
        var table = GPUPageTable()
        let vram = Target(address: 0, linkProtocol: .localVRAM)
        let cases: [(UInt64, UInt64, GPUPageTable.LeafSize, Target, GPUPageTableError)] = [
            (0x1000, 64 * KiB, .size64K, vram, .misalignedAddress(virtualAddress: 0x1000, pageSize: .size64K)),
            (0x10_0000, 2 * MiB, .size2M, vram, .misalignedAddress(virtualAddress: 0x10_0000, pageSize: .size2M)),
            (0x800, 4 * KiB, .size4K, vram, .misalignedAddress(virtualAddress: 0x800, pageSize: .size4K)),
            (0x20_0000, 2 * MiB, .size2M, Target(address: 0x1_0000, linkProtocol: .localVRAM),
             .misalignedTarget(address: 0x1_0000, pageSize: .size2M)),
            (0x10000, 0, .size64K, vram, .invalidSize(size: 0, pageSize: .size64K)),
            (0x10000, 68 * KiB, .size64K, vram, .invalidSize(size: 68 * KiB, pageSize: .size64K)),
            (GPUPageTable.addressLimit - 0x1000, 8 * KiB, .size4K, vram,
             .outsideAddressSpace(virtualAddress: GPUPageTable.addressLimit - 0x1000, size: 8 * KiB)),
        ]
        for (va, size, pageSize, target, expected) in cases {
            let error = #expect(throws: GPUPageTableError.self) {
                try table.map(virtualAddress: va, size: size, pageSize: pageSize, target: target)
            }
            #expect(error == expected)
            #expect(error?.pluginErrno == .invalidArgument)
        }
        #expect(table.isEmpty && table.mappedBytes == 0)
        #expect(GPUPageTableError.misalignedAddress(virtualAddress: 0x1000, pageSize: .size64K).description
            == "virtual address 0x1000 is not aligned to the 64 KiB page size")
        // A scattered map with one misaligned target maps none of the others.
        #expect(throws: GPUPageTableError.misalignedTarget(address: 0x1800, pageSize: .size4K)) {
            try table.map(
                virtualAddress: 0, pageSize: .size4K,
                targets: [0x1000, 0x1800].map { Target(address: $0, linkProtocol: .system) })
        }
        #expect(throws: GPUPageTableError.misalignedRange(0x800 ..< 0x1000)) { try table.unmap(0x800 ..< 0x1000) }
        #expect(table.isEmpty)
    }

    @Test("Mapping over an existing leaf is rejected: zap first")
    func overlapRejected() throws {
        var table = GPUPageTable()
        let target = Target(address: 0x40_0000, linkProtocol: .localVRAM)
        try table.map(virtualAddress: 0x10000, size: 64 * KiB, pageSize: .size64K, target: target)
        try table.map(virtualAddress: 0x60_0000, size: 4 * KiB, pageSize: .size4K, target: target)
        try table.map(virtualAddress: 0x80_0000, size: 2 * MiB, pageSize: .size2M, target: target)
        let cases: [(UInt64, UInt64, GPUPageTable.LeafSize, Range<UInt64>)] = [
            (0x1F000, 4 * KiB, .size4K, 0x10000 ..< 0x20000),  // a page inside a 64 KiB leaf
            (0, 2 * MiB, .size2M, 0x10000 ..< 0x20000),  // a 2 MiB leaf over a 64 KiB leaf
            (0x40_0000, 4 * MiB, .size2M, 0x60_0000 ..< 0x60_1000),  // the second 2 MiB hits a page
            (0x90_0000, 64 * KiB, .size64K, 0x80_0000 ..< 0xA0_0000),  // inside a 2 MiB leaf
            (0x1000, 64 * KiB, .size4K, 0x10000 ..< 0x20000),  // pages running into a 64 KiB leaf
        ]
        for (va, size, pageSize, existing) in cases {
            let error = #expect(throws: GPUPageTableError.self) {
                try table.map(virtualAddress: va, size: size, pageSize: pageSize, target: target)
            }
            #expect(error == .overlapsMapping(requested: va ..< va + size, existing: existing))
        }
        // Nothing of the failed maps stayed behind.
        #expect(table.leafCount == 3)
        #expect(table.mappedBytes == 64 * KiB + 4 * KiB + 2 * MiB)
        #expect(table.translate(0x40_0000) == nil && table.translate(0x1000) == nil)
    }

    @Test("Unmap zaps whole leaves only; leafAlignedRange widens a range that cuts one")
    func unmapWholeLeaves() throws {
        var table = GPUPageTable()
        let target = Target(address: 0, linkProtocol: .localVRAM)
        try table.map(virtualAddress: 0x10000, size: 64 * KiB, pageSize: .size64K, target: target)
        try table.map(virtualAddress: 0x20_0000, size: 2 * MiB, pageSize: .size2M, target: target)
        try table.map(virtualAddress: 0x40_0000, size: 16 * KiB, pageSize: .size4K, target: target)

        #expect(throws: GPUPageTableError.unmapSplitsLeaf(requested: 0x18000 ..< 0x30000, leaf: 0x10000 ..< 0x20000)) {
            try table.unmap(0x18000 ..< 0x30000)
        }
        #expect(throws: GPUPageTableError.unmapSplitsLeaf(requested: 0 ..< 0x30_0000, leaf: 0x20_0000 ..< 0x40_0000)) {
            try table.unmap(0 ..< 0x30_0000)
        }
        #expect(table.mappedBytes == 64 * KiB + 2 * MiB + 16 * KiB)

        #expect(table.leafAlignedRange(covering: 0x18123 ..< 0x30000) == 0x10000 ..< 0x30000)
        #expect(table.leafAlignedRange(covering: 0x30_0000 ..< 0x40_1800) == 0x20_0000 ..< 0x40_2000)
        #expect(try table.unmap(table.leafAlignedRange(covering: 0x18123 ..< 0x30000)) == 64 * KiB)
        // Part of a run of 4 KiB leaves is fine: each page is a leaf.
        #expect(try table.unmap(0x40_1000 ..< 0x40_2000) == 4 * KiB)
        #expect(table.translate(0x40_0000) != nil && table.translate(0x40_1000) == nil)
        // Zapping unmapped VA is not an error; zapping the whole space is cheap.
        #expect(try table.unmap(0x100_0000 ..< 0x200_0000) == 0)
        #expect(try table.unmap(0 ..< GPUPageTable.addressLimit) == 2 * MiB + 12 * KiB)
        #expect(table.isEmpty && table.leafCount == 0 && table.mappedBytes == 0)
        #expect(throws: GPUPageTableError.self) { try table.unmap(0 ..< GPUPageTable.addressLimit + 0x1000) }
    }

    @Test("Random maps and unmaps match a 4 KiB dictionary model", arguments: 0 ..< 30)
    func randomizedModel(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let base: UInt64 = 0x7F00_0000_0000
        let window: UInt64 = 8 * MiB
        var table = GPUPageTable()
        var model = PageModel()

        for step in 0 ..< 300 {
            if Int.random(in: 0 ..< 10, using: &random) < 6 {
                let pageSize = GPUPageTable.LeafSize.allCases.randomElement(using: &random)!
                let maxLeaves: UInt64 = pageSize == .size2M ? 2 : pageSize == .size64K ? 6 : 24
                let leaves = UInt64.random(in: 1 ... maxLeaves, using: &random)
                let va = base + UInt64.random(in: 0 ..< window / pageSize.bytes - leaves + 1, using: &random)
                    * pageSize.bytes
                let target = Target(
                    address: UInt64.random(in: 0 ..< 1 << 20, using: &random) * pageSize.bytes,
                    linkProtocol: [.system, .localVRAM, .pciePeerToPeer, .fabric].randomElement(using: &random)!,
                    writable: Bool.random(using: &random), atomicAllowed: Bool.random(using: &random))
                let size = leaves * pageSize.bytes
                let conflict = model.firstMapped(in: va ..< va + size)
                do {
                    try table.map(virtualAddress: va, size: size, pageSize: pageSize, target: target)
                    #expect(conflict == nil, "step \(step): mapped over \(String(describing: conflict))")
                    model.map(va: va, size: size, pageSize: pageSize, target: target)
                } catch {
                    guard case let .overlapsMapping(requested, existing) = error else {
                        Issue.record("step \(step): \(error)")
                        continue
                    }
                    #expect(requested == va ..< va + size)
                    #expect(conflict != nil && existing == conflict, "step \(step)")
                }
            } else {
                let first = UInt64.random(in: 0 ..< window / 0x1000, using: &random)
                let count = UInt64.random(in: 0 ... min(window / 0x1000 - first, 1200), using: &random)
                let range = base + first * 0x1000 ..< base + (first + count) * 0x1000
                let split = model.splitLeaf(by: range)
                do {
                    let bytes = try table.unmap(range)
                    #expect(split == nil, "step \(step): unmap cut \(String(describing: split))")
                    #expect(bytes == model.unmap(range))
                } catch {
                    #expect(error == .unmapSplitsLeaf(requested: range, leaf: split ?? 0 ..< 0), "step \(step)")
                }
            }
            #expect(table.mappedBytes == UInt64(model.pages.count) * 0x1000)
            for size in GPUPageTable.LeafSize.allCases {
                #expect(table.leafCount(size) == model.leafCount(size), "step \(step), \(size)")
            }
            for _ in 0 ..< 24 {
                let va = base + UInt64.random(in: 0 ..< window, using: &random)
                #expect(table.translate(va) == model.translate(va), "step \(step), va 0x\(String(va, radix: 16))")
            }
        }
        for page in stride(from: base, to: base + window, by: 0x1000) {
            #expect(table.translate(page + 0x0FFF) == model.translate(page + 0x0FFF))
        }
        #expect(table.leaves().map(\.range) == model.leafRanges)
        try table.unmap(base ..< base + window)
        #expect(table.isEmpty)
    }
}

/// The reference: one record per mapped 4 KiB page.
private struct PageModel {
    struct Page {
        var target: Target  // the target of this page
        var leaf: Range<UInt64>
        var size: GPUPageTable.LeafSize
    }

    var pages: [UInt64: Page] = [:]

    func firstMapped(in range: Range<UInt64>) -> Range<UInt64>? {
        stride(from: range.lowerBound, to: range.upperBound, by: 0x1000).lazy.compactMap { pages[$0]?.leaf }.first
    }

    /// The first leaf partly inside `range`.
    func splitLeaf(by range: Range<UInt64>) -> Range<UInt64>? {
        stride(from: range.lowerBound, to: range.upperBound, by: 0x1000).lazy.compactMap { pages[$0]?.leaf }
            .first { $0.lowerBound < range.lowerBound || $0.upperBound > range.upperBound }
    }

    mutating func map(va: UInt64, size: UInt64, pageSize: GPUPageTable.LeafSize, target: Target) {
        for page in stride(from: va, to: va + size, by: 0x1000) {
            let leafStart = page & ~(pageSize.bytes - 1)
            var pageTarget = target
            pageTarget.address += page - va
            pages[page] = Page(target: pageTarget, leaf: leafStart ..< leafStart + pageSize.bytes, size: pageSize)
        }
    }

    mutating func unmap(_ range: Range<UInt64>) -> UInt64 {
        var bytes: UInt64 = 0
        for page in stride(from: range.lowerBound, to: range.upperBound, by: 0x1000)
        where pages.removeValue(forKey: page) != nil {
            bytes += 0x1000
        }
        return bytes
    }

    func translate(_ va: UInt64) -> GPUPageTable.Translation? {
        guard let page = pages[va & ~0xFFF] else { return nil }
        return GPUPageTable.Translation(
            address: page.target.address + (va & 0xFFF), linkProtocol: page.target.linkProtocol,
            writable: page.target.writable, atomicAllowed: page.target.atomicAllowed, owner: page.target.owner,
            leafStart: page.leaf.lowerBound, leafSize: page.size)
    }

    func leafCount(_ size: GPUPageTable.LeafSize) -> Int {
        Set(pages.values.filter { $0.size == size }.map(\.leaf.lowerBound)).count
    }

    var leafRanges: [Range<UInt64>] {
        Set(pages.values.map(\.leaf.lowerBound)).sorted().map { pages[$0]!.leaf }
    }
}
