#if canImport(Glibc)
import Glibc
#endif

/// An anonymous private read-write mapping for tests: plain host memory, unmapped when the
/// value is released.
public final class AnonymousMapping: Sendable {
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The first byte's address.
    public let start: UInt64
    public let length: Int

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let errno: Int32
        public var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
    }

    public init(pages: Int) throws {
        let length = pages * Self.pageSize
        let address = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else { throw Failure(operation: "mmap", errno: errno) }
        start = UInt64(UInt(bitPattern: address))
        self.length = length
    }

    deinit { munmap(pointer, length) }

    public var pointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(start))! }
    public var range: Range<UInt64> { start ..< start + UInt64(length) }

    /// The address of page `index`.
    public func page(_ index: Int) -> UInt64 { start + UInt64(index * Self.pageSize) }

    /// The bytes at `offset`, read by the CPU.
    public func bytes(at offset: Int, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: pointer + offset, count: count))
    }

    /// Writes `bytes` at `offset` with the CPU.
    public func store(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { (pointer + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Unmaps `pages` as munmap would (their memory is gone), but leaves the addresses
    /// reserved (`PROT_NONE`): a test that keeps a stale device binding to them must not let
    /// another thread's mmap reuse the addresses meanwhile.
    public func unmapKeepingAddresses(pages: Range<Int>) throws {
        let address = mmap(
            pointer + pages.lowerBound * Self.pageSize, pages.count * Self.pageSize, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else { throw Failure(operation: "mmap(MAP_FIXED)", errno: errno) }
    }
}
