import Glibc

/// An array of `UInt32` in private anonymous memory, aligned to 2 MiB: what a workload's
/// program allocates and hands to devices by pointer (the system allocator model). The
/// CPU reads and writes it directly; device-resident parts fault back on the CPU.
///
/// The mapping is a whole number of 2 MiB: a range never ends at a mapping boundary inside
/// a 2 MiB window, so every range is 2 MiB wherever the kernel places the array (a partial
/// window would get 64 KiB and 4 KiB ranges depending on its neighbours, and runs with the
/// same seed would differ).
public final class SVMArray: @unchecked Sendable {
    public let count: Int
    public let address: UInt64
    private let base: UnsafeMutablePointer<UInt32>
    private let mappedBytes: Int
    private static let window = 2 << 20

    public var byteCount: UInt64 { UInt64(count) * 4 }

    /// The addresses of its elements.
    public var interval: AddressInterval { AddressInterval(start: address, end: address + byteCount) }

    /// - Throws: ``ExperimentError/outOfMemory(_:)`` when the mapping fails.
    public init(count: Int) throws(ExperimentError) {
        precondition(count > 0)
        mappedBytes = (count * 4 + Self.window - 1) / Self.window * Self.window
        guard let raw = mapAnonymousAligned(size: mappedBytes, alignment: Self.window) else {
            throw .outOfMemory("mmap of \(mappedBytes) bytes failed: errno \(errno)")
        }
        self.count = count
        address = UInt64(UInt(bitPattern: raw))
        base = raw.bindMemory(to: UInt32.self, capacity: count)
    }

    deinit { munmap(base, mappedBytes) }

    /// Direct CPU access (faults and all).
    public var elements: UnsafeMutableBufferPointer<UInt32> { UnsafeMutableBufferPointer(start: base, count: count) }

    /// The SVM address of element `index`.
    public func address(of index: Int) -> UInt64 { address + UInt64(index) * 4 }
}
