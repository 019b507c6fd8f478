import Foundation
import Glibc
import SVMFramework
import SVMTestSupport
import Testing

/// Memory backed by a transparent huge page migrates as one: a 2 MiB range whose pages are
/// one huge page moves to SimDevice's memory and back as that huge page (the kernel moves
/// the PMD in one step when the whole of it moves; measured 1.4 us against 34 us for 512
/// small pages of the same bytes), with its data, and stays huge in system memory after.
/// Whether `madvise(MADV_HUGEPAGE)` gives huge pages here (`always` or `madvise`).
private let hugePagesOnRequest: Bool = {
    guard let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)
    else { return false }
    return mode.contains("[always]") || mode.contains("[madvise]")
}()

@Suite("Huge pages", .enabled(if: hugePagesOnRequest, "transparent huge pages are off here"))
struct HugePageTests {
    static let hugePage = 2 << 20

    /// The `AnonHugePages` of the mapping containing `address`, in bytes (`/proc/self/smaps`).
    static func hugeBytes(at address: UInt64) -> Int? {
        guard let line = smapsLines(ofMappingContaining: address)?.first(where: { $0.hasPrefix("AnonHugePages:") }) else { return nil }
        let fields = line.split(separator: " ")
        return fields.count >= 2 ? Int(fields[1]).map { $0 * 1024 } : nil
    }

    @Test func aHugePageMigratesAsOneAndComesHomeHuge() throws {
        let f = try SimDeviceFixture(options: MigrationPath.zeroCopy.options)
        defer { f.shutdown() }
        let size = Self.hugePage
        let base = try #require(mapAnonymousAligned(size: size, alignment: Self.hugePage))
        defer { munmap(base, size) }
        #expect(madvise(base, size, MADV_HUGEPAGE) == 0)
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i >> 12) }
        let address = UInt64(UInt(bitPattern: base))
        let intact = { (0..<size).allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 12) } }
        try #require(Self.hugeBytes(at: address) == size, "the kernel gave no huge page for the buffer")

        // To the device: the data is there, and the buffer's mapping holds no page.
        let (read, result) = try f.deviceRead(address + 4096 * 300 + 5, 64)
        #expect(result.stoppedBy == nil)
        #expect(read == (0..<64).map { UInt8(truncatingIfNeeded: (4096 * 300 + 5 + $0) &* 7 &+ (4096 * 300 + 5 + $0) >> 12) })
        #expect(f.device(holding: address) != nil)
        #expect(Self.hugeBytes(at: address) == 0)
        // Home again by a CPU read: every byte, and still one huge page (moving it as 512
        // small pages would have split it).
        #expect(intact())
        #expect(f.device(holding: address) == nil)
        #expect(Self.hugeBytes(at: address) == size)
        #expect(f.count("bytesMoved") == 2 * size && f.count("bytesCopied") == 0)
    }
}
