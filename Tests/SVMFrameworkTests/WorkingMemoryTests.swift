import Foundation
import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

/// Working memory (VRAM, bounce buffers, staging) never shares a VMA with the program's
/// memory, so an SVM range can never cover it.
@Suite("Working memory") struct WorkingMemoryTests {
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The `VmFlags` of the mapping that contains `address`, from /proc/self/smaps.
    func vmFlags(of address: UnsafeMutableRawPointer) throws -> [Substring] {
        let target = UInt64(UInt(bitPattern: address))
        let lines = try #require(smapsLines(ofMappingContaining: target), "no mapping contains 0x\(String(target, radix: 16))")
        let flags = try #require(lines.first { $0.hasPrefix("VmFlags:") })
        return flags.dropFirst("VmFlags:".count).split(separator: " ")
    }

    @Test("Working memory carries a flag ordinary anonymous memory lacks, so the two never merge into one VMA")
    func workingMemoryHasItsOwnFlag() throws {
        let ordinary = try #require(mmap(nil, 2 * Self.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(ordinary, 2 * Self.page) }
        let working = try #require(mapWorkingMemory(size: 2 * Self.page, reserve: false))
        defer { munmap(working, 2 * Self.page) }
        // VMAs merge only when their flags are equal: "dd" (VM_DONTDUMP) keeps them apart.
        #expect(try vmFlags(of: working).contains("dd"))
        #expect(try !vmFlags(of: ordinary).contains("dd"))
    }
}
