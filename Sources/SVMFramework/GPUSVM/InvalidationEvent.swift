/// Why an interval of the mirror is invalidated: the MMU-notifier events.
public enum InvalidationEvent: Sendable, Hashable {
    /// `munmap`: the ranges are marked unmapped and collected later.
    case unmap
    /// `madvise(MADV_DONTNEED)`, `free`: the CPU pages are gone, the mapping stays.
    case remove
    /// `mremap` moved the pages away.
    case remap
    /// A migration is moving the pages (the framework's own invalidation).
    case migration
    /// `mprotect`: the protection may shrink; device mappings go, and a refault checks the
    /// new protection.
    case protectionChange

    /// Only an unmap ends the ranges; other events only zap device mappings, which refault.
    var unmapsRanges: Bool { self == .unmap }
}
