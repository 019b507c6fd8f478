#if canImport(Glibc)
import Glibc
#endif
import SVMPluginKit
import Synchronization

/// The bounce buffers kernels stage bytes in, one per kernel running, reused.
///
/// A kernel step copies into its bounce buffer while it holds the page-table lock, so the
/// buffer must never fault into the SVM mirror (whose handler takes that lock to zap): it is
/// working memory declared private to the host (``HostServices/mapPrivateMemory(size:reserve:)``),
/// never `malloc`'d memory, so that no SVM range covers it, even when a device faults on it
/// through a stray pointer.
final class SimDeviceBounceBuffers: Sendable {
    /// Bytes per buffer.
    let size: Int
    /// Addresses of the buffers not in use.
    private let idle = Locked<[UInt]>([])

    /// Told of each buffer mapped, and of its end.
    private let host: HostServices

    init(size: Int, host: HostServices) {
        self.size = size
        self.host = host
    }

    /// A buffer for one kernel; give it back with ``recycle(_:)``.
    func take() throws(PluginErrno) -> UnsafeMutableRawPointer {
        if let address = idle.withLock({ $0.popLast() }) { return UnsafeMutableRawPointer(bitPattern: address)! }
        guard let buffer = host.mapPrivateMemory(size: size, reserve: false) else { throw .outOfMemory }
        return buffer
    }

    func recycle(_ buffer: UnsafeMutableRawPointer) {
        idle.withLock { $0.append(UInt(bitPattern: buffer)) }
    }

    /// Unmaps the idle buffers (at device close, when no kernel runs).
    func unmapAll() {
        for address in idle.withLock({ buffers in defer { buffers.removeAll() }; return buffers }) {
            host.unmapPrivateMemory(UnsafeMutableRawPointer(bitPattern: address)!, size: size)
        }
    }
}
