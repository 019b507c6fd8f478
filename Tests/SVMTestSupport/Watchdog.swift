import Glibc
import Synchronization

/// Ends the test process with a message if it is not cancelled in time: a deadlock test
/// must fail, not hang the suite.
public final class Watchdog: Sendable {
    private let cancelled = Atomic<Bool>(false)

    public init(seconds: Int, _ message: String) {
        let flag = Holder(self)
        _ = TestThread {
            for _ in 0..<(seconds * 10) {
                usleep(100_000)
                if flag.watchdog?.cancelled.load(ordering: .acquiring) ?? true { return }
            }
            fatalError("watchdog: \(message) (no progress in \(seconds) s)")
        }
    }

    public func cancel() { cancelled.store(true, ordering: .releasing) }

    private final class Holder: @unchecked Sendable {
        weak var watchdog: Watchdog?
        init(_ watchdog: Watchdog) { self.watchdog = watchdog }
    }
}
