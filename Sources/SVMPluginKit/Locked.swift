#if canImport(Glibc)
import Glibc
#endif

/// A value behind a mutex: the lock type of the framework and its plugins.
///
/// A `pthread_mutex_t`, not `Synchronization.Mutex`: ThreadSanitizer intercepts pthread
/// locks and so sees what they order, while `Mutex` locks with raw futex calls that it cannot
/// see, which made every access inside a `withLock` look like a race (64 of 65 reports of a
/// TSan run were such). Uncontended, both cost an atomic exchange each way.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    // The mutex must not move: it lives in its own allocation (one, not a `Lock` object and
    // its mutex: a range has several of these, made on its first fault).
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // Read and written only while `mutex` is held. Unchecked: the mutex already makes every
    // access exclusive (a nested `withLock` deadlocks before it could overlap), and the
    // runtime's dynamic check cost about 100 instructions per `withLock`, of which a steady
    // device fault and its migrate-back take some 40 between them (see the Locking article).
    @exclusivity(unchecked) @usableFromInline var value: Value

    public init(_ value: consuming Value) {
        mutex = Lock.makeMutex()
        self.value = value
    }

    deinit {
        Lock.destroy(mutex)
    }

    /// Runs `body` with the value while holding the lock. Not reentrant: a thread that
    /// calls it again from `body` deadlocks. Inlinable, so that a caller in another module
    /// gets it specialized for its value: the generic version copied the value through its
    /// type's witnesses and instantiated metadata on every call.
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// A mutex guarding state that is not one value (the fields of its owner), as ``Locked``
/// is for one. Not `Locked<Void>`: ThreadSanitizer took the inout accesses to its empty
/// value, made under the lock, for races.
public final class Lock: @unchecked Sendable {
    // The mutex must not move: it lives in its own allocation.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = Self.makeMutex()
    }

    deinit {
        Self.destroy(mutex)
    }

    /// A default mutex in an allocation of its own.
    static func makeMutex() -> UnsafeMutablePointer<pthread_mutex_t> {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
        return mutex
    }

    static func destroy(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` while holding the lock. Not reentrant. Inlinable, as ``Locked``'s.
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
