#if canImport(Glibc)
import Glibc
#endif

/// A reader/writer lock (`pthread_rwlock_t`), for the framework and for plugins.
public final class ReaderWriterLock: @unchecked Sendable {
    // pthread_rwlock_t must not move: it lives in its own allocation.
    @usableFromInline let lock: UnsafeMutablePointer<pthread_rwlock_t>

    /// `preferWriters`: a waiting writer goes before new readers, so that a steady stream of
    /// readers cannot starve it; a thread must then never take the read lock twice (it
    /// would wait behind a writer waiting for it).
    public init(preferWriters: Bool = false) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        defer { pthread_rwlockattr_destroy(&attributes) }
        if preferWriters {
            pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        }
        let status = pthread_rwlock_init(lock, &attributes)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` holding the lock for reading. Inlinable, as `Locked.withLock`.
    @inlinable
    public func withReadLock<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// Runs `body` holding the lock for writing.
    @inlinable
    public func withWriteLock<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
