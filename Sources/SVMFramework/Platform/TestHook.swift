import SVMPluginKit
import Synchronization

/// A place where a test injects code into the framework's hot paths (a stall inside a
/// migration, contention inside a commit): `nil` until a test sets it. Behind its own mutex,
/// a leaf; whether one is set is also an atomic, so that the paths that ask on every fault
/// or migration take no lock when none is (almost always).
final class TestHook<Hook: Sendable>: Sendable {
    private let hook = Locked<Hook?>(nil)
    private let isSet = Atomic<Bool>(false)

    init() {}

    /// The hook, or `nil`.
    var current: Hook? {
        get { isSet.load(ordering: .acquiring) ? hook.withLock { $0 } : nil }
        set {
            hook.withLock { $0 = newValue }
            isSet.store(newValue != nil, ordering: .releasing)
        }
    }
}
