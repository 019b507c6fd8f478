import Synchronization

/// Protection changes (`mprotect`) the mirror has seen starting and ending, for the fault
/// path's commit. userfaultfd reports none; the framework's wrappers of libc's `mprotect` and
/// `pkey_mprotect` do (see `ProtectionWatch.swift`, which also says what they cannot see).
///
/// A device fault reads ``generation`` before it looks up the memory's protection, and its
/// commit, under the notifier lock, binds only if no change started or ended since and none
/// is in progress: a binding made with the protection read before a change would outlive the
/// invalidation that change made.
final class ProtectionChanges: Sendable {
    /// Changes started and not ended yet.
    private let inProgress = Atomic<Int>(0)
    /// Bumped when a change starts and when it ends.
    private let counter = Atomic<UInt64>(0)

    var generation: UInt64 { counter.load(ordering: .sequentiallyConsistent) }

    /// A change starts (before the system call; the caller then invalidates device mappings).
    func begin() {
        inProgress.add(1, ordering: .sequentiallyConsistent)
        counter.add(1, ordering: .sequentiallyConsistent)
    }

    /// The change took effect, or failed.
    func end() {
        counter.add(1, ordering: .sequentiallyConsistent)
        inProgress.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// ``generation`` if no change runs now, else `nil`.
    var generationIfSettled: UInt64? {
        // Read twice around the count in progress: a whole change between two reads shows.
        let generation = counter.load(ordering: .sequentiallyConsistent)
        let settled = inProgress.load(ordering: .sequentiallyConsistent) == 0
        return settled && counter.load(ordering: .sequentiallyConsistent) == generation ? generation : nil
    }

    /// Whether no change started or ended since `generation` was read, and none runs now.
    func unchanged(since generation: UInt64) -> Bool {
        inProgress.load(ordering: .sequentiallyConsistent) == 0 && counter.load(ordering: .sequentiallyConsistent) == generation
    }
}
