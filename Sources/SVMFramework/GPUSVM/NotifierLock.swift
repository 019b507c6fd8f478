import Glibc
import SVMPluginKit
import Synchronization

/// The notifier lock (`drm_gpusvm`'s notifier lock): a reader/writer lock. Invalidations take
/// it for writing (they bump sequence numbers and zap device mappings); device page-table
/// commits take it for reading and check the sequence number under it.
///
/// It must never be held while managed memory is touched: a CPU fault on that memory needs
/// the fault handler, which may need this lock.
///
/// The helpers that need it end in `Locked` and call ``assertHeld(_:)``, which in a debug
/// build stops the process when the calling thread does not hold the lock in that mode (the
/// kernel's `lockdep_assert_held`). Release builds keep no record and check nothing.
public final class NotifierLock: Sendable {
    public enum Mode: Sendable {
        /// Held for reading (or writing, which is stronger).
        case read
        /// Held for writing.
        case write
    }

    private let lock = ReaderWriterLock()
    #if DEBUG
    /// The threads holding the lock now and how (debug builds): written by each thread for
    /// itself, right after it takes the lock and right before it lets it go.
    private let holders = Locked<[UInt: Mode]>([:])
    #endif

    public init() {}

    public func withReadLock<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        try lock.withReadLock { () throws(Failure) -> T in
            note(.read)
            defer { note(nil) }
            return try body()
        }
    }

    public func withWriteLock<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        try lock.withWriteLock { () throws(Failure) -> T in
            note(.write)
            defer { note(nil) }
            return try body()
        }
    }

    /// Stops a debug build unless the calling thread holds the lock in `mode` (`.read` is
    /// satisfied by either mode).
    public func assertHeld(_ mode: Mode, _ helper: StaticString = #function, file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        let held = holders.withLock { $0[Self.thread] }
        let satisfied = switch (mode, held) {
        case (_, .write), (.read, .read): true
        default: false
        }
        precondition(satisfied, "\(helper) needs the notifier lock held for \(mode == .write ? "writing" : "reading")", file: file, line: line)
        #endif
    }

    private func note(_ mode: Mode?) {
        #if DEBUG
        holders.withLock { $0[Self.thread] = mode }
        #endif
    }

    private static var thread: UInt { UInt(pthread_self()) }
}
