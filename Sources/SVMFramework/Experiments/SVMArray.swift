import Glibc

/// An array of `UInt32` in private anonymous memory, aligned to 2 MiB: what a workload's
/// program allocates and hands to devices by pointer (the system allocator model). The
/// CPU reads and writes it directly; device-resident parts fault back on the CPU.
public final class SVMArray: @unchecked Sendable {
    public let count: Int
    public let address: UInt64
    private let base: UnsafeMutablePointer<UInt32>

    public var byteCount: UInt64 { UInt64(count) * 4 }

    /// - Throws: ``ExperimentError/outOfMemory(_:)`` when the mapping fails.
    public init(count: Int) throws(ExperimentError) {
        precondition(count > 0)
        guard let raw = mapAnonymousAligned(size: count * 4, alignment: 2 << 20) else {
            throw .outOfMemory("mmap of \(count * 4) bytes failed: errno \(errno)")
        }
        self.count = count
        address = UInt64(UInt(bitPattern: raw))
        base = raw.bindMemory(to: UInt32.self, capacity: count)
    }

    deinit { munmap(base, count * 4) }

    /// Direct CPU access (faults and all).
    public var elements: UnsafeMutableBufferPointer<UInt32> { UnsafeMutableBufferPointer(start: base, count: count) }

    /// The SVM address of element `index`.
    public func address(of index: Int) -> UInt64 { address + UInt64(index) * 4 }
}
