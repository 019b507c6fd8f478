import Glibc

/// The notifier lock: a reader/writer lock. Invalidations take it for writing (they bump
/// sequence numbers and zap device mappings); device page-table commits take it for reading
/// and check the sequence number under it.
///
/// It must never be held while managed memory is touched: a CPU fault on that memory needs
/// the fault handler, which may need this lock.
public final class NotifierLock: @unchecked Sendable {
    // pthread_rwlock_t must not move: it lives in its own allocation.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        let status = pthread_rwlock_init(lock, nil)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    public func withReadLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    public func withWriteLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
