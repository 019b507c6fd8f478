import SVMPluginKit

/// Whether an open device may still be called, shared by the device and its pagemap: every
/// call the framework makes into the plugin from its own threads (the fault handler among
/// them) holds it for reading, and closing takes it for writing, so a device is never called
/// after it was closed.
final class DeviceLifetime: @unchecked Sendable {
    private let lock = ReaderWriterLock()
    /// Protected by `lock`: read under the read lock, written under the write lock.
    private var closed = false

    /// Runs `body` if the device is still open; `nil` after ``markClosed()``.
    func ifOpen<T>(_ body: () throws -> T) rethrows -> T? {
        try lock.withReadLock { closed ? nil : try body() }
    }

    /// Waits for calls in flight, then makes every later ``ifOpen(_:)`` a no-op.
    func markClosed() {
        lock.withWriteLock { closed = true }
    }
}
