import Glibc

/// Memory the benchmarks fault on or move: private anonymous, aligned (a 2 MiB chunk may be
/// one huge page), populated with bytes that are not zero.
/// `@unchecked Sendable`: the mapping never changes; the threads of one measurement (the
/// CPU fault floor's handler and the timing thread) take turns on its pages, ordered by the
/// faults themselves.
final class BenchmarkBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int

    init(size: Int, alignment: Int) throws {
        guard let base = mapAnonymousAligned(size: size, alignment: alignment) else {
            throw BenchmarkError(message: "cannot map \(size) bytes: errno \(errno)")
        }
        self.base = base
        self.size = size
    }

    deinit { munmap(base, size) }

    var address: UInt64 { UInt64(UInt(bitPattern: base)) }

    /// What the buffer is populated with: not zero, so a page that lost its data is seen.
    static let pattern: UInt8 = 0x3c

    func populate() { memset(base, Int32(Self.pattern), size) }

    /// The address of chunk `index` of `bytes` bytes.
    func address(chunk index: Int, of bytes: Int) -> UInt { UInt(bitPattern: base) + UInt(index * bytes) }

    /// Reads one byte at `offset`, so that the CPU faults if it is not present.
    func touch(offset: Int) {
        let byte = base.load(fromByteOffset: offset, as: UInt8.self)
        precondition(byte == Self.pattern, "benchmark data lost at offset \(offset): \(byte)")
    }
}
