import SVMPluginKit
import Synchronization

/// The settings a context's device faults read when they run, shared by the context (which
/// sets them, from any thread) and its fault path (which reads them at each fault).
final class FaultSettings: Sendable {
    /// How long one device fault may keep retrying before it fails with `EAGAIN`: 10 s, far
    /// above any real fault service (milliseconds at most), short enough that a stuck fault
    /// fails a test instead of hanging it. Atomic: set by any thread, read by each fault when
    /// it starts.
    private let timeoutNanoseconds = Atomic<Int64>(10_000_000_000)
    /// How long data a device atomic migrated stays in device memory before a CPU fault
    /// takes it back: 5 ms, as the xe driver gives atomics on discrete GPUs (`timeslice_ms`
    /// in `xe_svm_handle_pagefault`). Atomic, like the timeout.
    private let atomicTimesliceNanoseconds = Atomic<Int64>(5_000_000)
    /// Contention injection for tests: runs in every device fault's commit, before the
    /// notifier lock, with the device and the range (a test makes another device's fault
    /// take the range away there, the worst moment).
    let contention = TestHook<@Sendable (SVMDevice, SVMRange) -> Void>()

    var timeout: Duration {
        get { .nanoseconds(timeoutNanoseconds.load(ordering: .relaxed)) }
        set { timeoutNanoseconds.store(newValue.wholeNanoseconds(), ordering: .relaxed) }
    }

    var atomicTimeslice: Duration {
        get { .nanoseconds(atomicTimesliceNanoseconds.load(ordering: .relaxed)) }
        set { atomicTimesliceNanoseconds.store(newValue.wholeNanoseconds(), ordering: .relaxed) }
    }
}
