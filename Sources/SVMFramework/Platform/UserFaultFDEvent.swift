import CSVMPlatform

/// One message read from a ``UserFaultFD``: a CPU page fault, or a change of the address
/// space that the mirror must treat like an MMU-notifier callback.
///
/// The address-space events (`unmap`, `remove`, `remap`) are *non-cooperative*: the thread
/// that called `munmap`, `madvise` or `mremap` sleeps in the kernel until the event has been
/// read, and until then every resolving ioctl on the descriptor answers
/// ``UserFaultFD/RangeOutcome/mappingChanging``. So the thread that reads events must never
/// itself unmap, `madvise(MADV_DONTNEED)` or `mremap` a registered range: it would wait for
/// itself.
public enum UserFaultFDEvent: Hashable, Sendable, CustomStringConvertible {
    /// A thread touched a registered page and sleeps until the fault is resolved and it is
    /// woken. `address` is page-aligned; `isWrite` for a write access; `isWriteProtect` when
    /// the page is present but write-protected (a WP fault, resolved by unprotecting), as
    /// opposed to missing (resolved by copy, zero page or move). `threadID`: the kernel id of
    /// the faulting thread, with ``UserFaultFD/Features/threadID``; else 0.
    case pagefault(address: UInt, isWrite: Bool, isWriteProtect: Bool, threadID: Int32 = 0)
    /// `munmap` (or a shrinking `mremap`, or an `mmap(MAP_FIXED)` over the range) removed
    /// `[start, end)`. The range is gone: mark it unmapped and let the collector free it.
    case unmap(start: UInt, end: UInt)
    /// `madvise` (`MADV_DONTNEED`, `MADV_FREE` or `MADV_REMOVE`) dropped the pages of `[start, end)`. The
    /// mapping stays and stays registered; its next touch is a missing fault.
    case remove(start: UInt, end: UInt)
    /// `mremap` moved the registered mapping of `length` bytes (the old size) from `from` to
    /// `to`. The new mapping stays registered with this descriptor. The same `mremap` then
    /// raises ``unmap(start:end:)`` for the old range `[from, from + length)`, already empty:
    /// move what the mirror tracks on this event, so that the unmap finds nothing left there.
    case remap(from: UInt, to: UInt, length: UInt)
    /// A child was forked with a copy of the registered ranges. Only delivered when
    /// `eventFork` was requested; the child's descriptor has already been closed.
    case fork

    init(_ event: svm_uffd_event) {
        switch Int(event.kind) {
        case SVM_UFFD_EVENT_PAGEFAULT:
            self = .pagefault(
                address: UInt(event.a),
                isWrite: event.flags & UInt64(SVM_UFFD_PAGEFAULT_WRITE) != 0,
                isWriteProtect: event.flags & UInt64(SVM_UFFD_PAGEFAULT_WP) != 0,
                threadID: Int32(truncatingIfNeeded: event.thread_id))
        case SVM_UFFD_EVENT_UNMAP:
            self = .unmap(start: UInt(event.a), end: UInt(event.b))
        case SVM_UFFD_EVENT_REMOVE:
            self = .remove(start: UInt(event.a), end: UInt(event.b))
        case SVM_UFFD_EVENT_REMAP:
            self = .remap(from: UInt(event.a), to: UInt(event.b), length: UInt(event.c))
        default:
            // The shim answers -EPROTO for kinds it does not know; only FORK remains.
            self = .fork
        }
    }

    public var description: String {
        func hex(_ value: UInt) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .pagefault(let address, let isWrite, let isWriteProtect, _):
            let access = isWrite ? "write" : "read"
            return "pagefault \(access)\(isWriteProtect ? " (write-protected)" : "") at \(hex(address))"
        case .unmap(let start, let end):
            return "unmap [\(hex(start)), \(hex(end)))"
        case .remove(let start, let end):
            return "remove [\(hex(start)), \(hex(end)))"
        case .remap(let from, let to, let length):
            return "remap \(length) bytes \(hex(from)) -> \(hex(to))"
        case .fork:
            return "fork"
        }
    }
}
