import Glibc
import SVMFramework

/// Anonymous memory from `mmap`, aligned to `alignment`, with helpers to fill and check it
/// with a pattern that differs per byte and per seed. What is still mapped is unmapped when
/// released: bytes the test unmapped with ``unmap(_:)`` are not (another test running
/// alongside may have mapped those addresses since), nor anything after ``forget()``.
public final class MappedBuffer: @unchecked Sendable {
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    public let base: UnsafeMutableRawPointer
    public let size: Int
    private var mapped = true
    /// Byte ranges the test unmapped.
    private var holes: [Range<Int>] = []

    /// `shared`: `MAP_SHARED` instead of `MAP_PRIVATE`.
    public init(size: Int, alignment: Int = 2 << 20, protection: Int32 = PROT_READ | PROT_WRITE, shared: Bool = false) {
        guard let aligned = mapAnonymousAligned(size: size, alignment: alignment, protection: protection, flags: shared ? MAP_SHARED : MAP_PRIVATE) else {
            preconditionFailure("mmap failed: \(errno)")
        }
        base = aligned
        self.size = size
    }

    /// `pages` pages, page-aligned, read-write.
    public convenience init(pages: Int) {
        self.init(size: pages * Self.pageSize, alignment: Self.pageSize)
    }

    deinit {
        guard mapped else { return }
        var start = 0
        for hole in holes.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if start < hole.lowerBound { munmap(base + start, hole.lowerBound - start) }
            start = max(start, hole.upperBound)
        }
        if start < size { munmap(base + start, size - start) }
    }

    /// Unmaps `bytes` (page-aligned): gone for the program, and never unmapped again.
    public func unmap(_ bytes: Range<Int>) {
        precondition(munmap(base + bytes.lowerBound, bytes.count) == 0, "munmap failed: \(errno)")
        holes.append(bytes)
    }

    public var address: UInt64 { UInt64(UInt(bitPattern: base)) }
    public var bytes: UnsafeMutablePointer<UInt8> { base.assumingMemoryBound(to: UInt8.self) }

    public var range: Range<UInt64> { address ..< address + UInt64(size) }

    /// The address of page `index`.
    public func page(_ index: Int) -> UInt64 { address + UInt64(index * Self.pageSize) }

    /// The bytes at `offset`, read by the CPU.
    public func bytes(at offset: Int, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// Writes `bytes` at `offset` with the CPU.
    public func store(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Unmaps `pages` as munmap would (their memory is gone), but leaves the addresses
    /// reserved (`PROT_NONE`): a test that keeps a stale device binding to them must not let
    /// another thread's mmap reuse the addresses meanwhile.
    public func unmapKeepingAddresses(pages: Range<Int>) {
        let address = mmap(
            base + pages.lowerBound * Self.pageSize, pages.count * Self.pageSize, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
        precondition(address != MAP_FAILED, "mmap(MAP_FIXED) failed: \(errno)")
    }

    /// The pattern byte at `offset` for `seed`.
    public static func pattern(_ offset: Int, seed: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: offset &* 31 &+ offset >> 12) ^ seed
    }

    public func fill(seed: UInt8, _ range: Range<Int>? = nil) {
        for i in range ?? 0..<size { bytes[i] = Self.pattern(i, seed: seed) }
    }

    /// How many bytes of `range` differ from the pattern for `seed`.
    public func mismatches(seed: UInt8, _ range: Range<Int>? = nil) -> Int {
        var count = 0
        for i in range ?? 0..<size where bytes[i] != Self.pattern(i, seed: seed) { count += 1 }
        return count
    }

    /// Whether `bytes` (read from the buffer at `offset`) hold the pattern for `seed`. A plain
    /// loop: an element-wise comparison written inside `#expect` records every element and
    /// takes seconds for 2 MiB in a debug build.
    public static func holdsPattern(_ bytes: some Collection<UInt8>, seed: UInt8, from offset: Int = 0) -> Bool {
        var index = offset
        for byte in bytes {
            if byte != pattern(index, seed: seed) { return false }
            index += 1
        }
        return true
    }

    /// How many bytes of `range` are not zero.
    public func nonZero(_ range: Range<Int>) -> Int {
        var count = 0
        for i in range where bytes[i] != 0 { count += 1 }
        return count
    }

    /// The test unmapped (or remapped) the memory itself.
    public func forget() { mapped = false }
}
