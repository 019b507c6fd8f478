import Glibc

/// Anonymous memory from `mmap`, aligned to `alignment`, with helpers to fill and check it
/// with a pattern that differs per byte and per seed. Unmapped when released, unless the
/// test unmapped it itself (``forget()``).
public final class MappedBuffer: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: Int
    private var mapped = true

    /// `flags` adds to `MAP_ANONYMOUS` (default `MAP_PRIVATE`).
    public init(size: Int, alignment: Int = 2 << 20, protection: Int32 = PROT_READ | PROT_WRITE, shared: Bool = false) {
        let raw = mmap(nil, size + alignment, protection, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0)!
        precondition(raw != MAP_FAILED, "mmap failed: \(errno)")
        let start = UInt(bitPattern: raw)
        let aligned = (start + UInt(alignment) - 1) & ~UInt(alignment - 1)
        if aligned > start { munmap(raw, Int(aligned - start)) }
        let tailStart = aligned + UInt(size)
        let tailEnd = start + UInt(size + alignment)
        if tailEnd > tailStart { munmap(UnsafeMutableRawPointer(bitPattern: tailStart), Int(tailEnd - tailStart)) }
        base = UnsafeMutableRawPointer(bitPattern: aligned)!
        self.size = size
    }

    deinit { if mapped { munmap(base, size) } }

    public var address: UInt64 { UInt64(UInt(bitPattern: base)) }
    public var bytes: UnsafeMutablePointer<UInt8> { base.assumingMemoryBound(to: UInt8.self) }

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

    /// How many bytes of `range` are not zero.
    public func nonZero(_ range: Range<Int>) -> Int {
        var count = 0
        for i in range where bytes[i] != 0 { count += 1 }
        return count
    }

    /// The test unmapped (or remapped) the memory itself.
    public func forget() { mapped = false }
}
