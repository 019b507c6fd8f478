import Glibc
import Synchronization

/// Ends the test process with a message if it is not cancelled in time: a deadlock test
/// must fail, not hang the suite. Before it ends the process it prints the stack of every
/// thread (with gdb, when installed), which is what finding a deadlock needs.
public final class Watchdog: Sendable {
    private let cancelled = Atomic<Bool>(false)

    public init(seconds: Int, _ message: String) {
        let flag = Holder(self)
        let thread = TestThread {
            for _ in 0..<(seconds * 10) {
                usleep(100_000)
                if flag.watchdog?.cancelled.load(ordering: .acquiring) ?? true { return }
            }
            let line = "watchdog: \(message) (no progress in \(seconds) s); thread stacks follow\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            printThreadStacks()
            fatalError("watchdog: \(message) (no progress in \(seconds) s)")
        }
        thread.detach()
    }

    public func cancel() { cancelled.store(true, ordering: .releasing) }

    private final class Holder: @unchecked Sendable {
        weak var watchdog: Watchdog?
        init(_ watchdog: Watchdog) { self.watchdog = watchdog }
    }
}

/// Prints the stack of every thread of this process to standard error: the kernel stacks
/// first (a thread looping inside a system call never stops for gdb, which then waits
/// forever; the kernel stack shows where it loops), then the user stacks through gdb,
/// which is given two minutes and then killed: gdb stops every thread, the mirror's handler
/// too, and its read of a missing page of a mirror that serves kernel-mode faults (a
/// `char *` argument it prints) waits for that handler forever; only SIGKILL ends it.
public func printThreadStacks() {
    let pid = getpid()
    _ = system("for t in /proc/\(pid)/task/*; do echo \"thread ${t##*/} ($(cat $t/comm)) kernel stack:\"; cat $t/stack; done 1>&2 2>/dev/null")
    _ = system("timeout -s KILL 120 gdb -p \(pid) -batch -ex 'thread apply all bt' 1>&2 2>/dev/null")
}
