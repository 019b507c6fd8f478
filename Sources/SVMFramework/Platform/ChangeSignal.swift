import CSVMPlatform
import Synchronization

/// Something threads wait on until it changes, without polling: a generation counter the
/// changer bumps, which waiters sleep on in the kernel (a futex). A waiter reads
/// ``generation``, checks its condition, and if it must wait calls
/// ``wait(whileAt:timeout:)`` with what it read: a change after the read wakes it, or makes
/// the wait return at once.
///
/// ``signal()`` costs one atomic increment and, only when someone waits, one system call.
final class ChangeSignal: @unchecked Sendable {
    /// The futex word: heap memory, so that its address stays put. Accessed only with the
    /// C11 atomics of `svm_futex.h`.
    private let word: UnsafeMutablePointer<UInt32>
    /// Threads inside ``wait(whileAt:timeout:)``: a signal with none skips the wake call.
    private let waiters = Atomic<Int>(0)

    init() {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
    }

    deinit { word.deallocate() }

    /// The number of changes so far.
    var generation: UInt32 { svm_futex_load(word) }

    /// Records a change and wakes every waiter.
    func signal() {
        svm_futex_increment(word)
        // Sequentially consistent on both sides: either this sees the waiter, or the
        // waiter's kernel check sees the new generation.
        if waiters.load(ordering: .sequentiallyConsistent) > 0 { svm_futex_wake_all(word) }
    }

    /// Sleeps until the generation differs from `generation`, or `timeout` passes.
    func wait(whileAt generation: UInt32, timeout: Duration) {
        waiters.add(1, ordering: .sequentiallyConsistent)
        defer { waiters.subtract(1, ordering: .sequentiallyConsistent) }
        _ = svm_futex_wait(word, generation, max(0, timeout.wholeNanoseconds()))
    }
}
