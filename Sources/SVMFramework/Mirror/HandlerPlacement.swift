import CSVMPlatform
import Glibc

/// Where the CPU mirror's handler thread runs.
///
/// A CPU fault that userfaultfd serves is two wake-ups: the faulting thread wakes the handler,
/// and the handler, once it has moved the pages, wakes the faulting thread. The scheduler puts
/// a woken thread on an idle CPU when there is one; on a virtual machine whose idle virtual
/// CPUs halt, that wake is an interrupt to a halted CPU (about 50 µs on this project's 2-core
/// VMs, `guest_halt_poll_ns` 0), and the handler's move then flushes the TLB of the other CPU
/// with one more. On the faulting thread's CPU, which the thread leaves idle while it waits,
/// both are thread switches. Measured with a bare C round trip of 2 MiB (64 faults, median,
/// four runs each): 147–191 µs placed by the scheduler, 44–76 µs with both threads pinned to
/// one CPU, 42–65 µs with the handler following the faulting thread.
public enum HandlerPlacement: String, Sendable, Hashable, CaseIterable, Codable {
    /// Wherever the scheduler puts it (the default): nothing is pinned.
    case scheduler
    /// On the CPU of the thread whose fault it served last, looked up after the fault is
    /// served (``FaultingThreadFollower``), at idle priority (`SCHED_IDLE`). The priority is
    /// what keeps both wake-ups on one CPU: a CPU running only idle-priority threads counts
    /// as idle, so the faulting thread, woken by the handler's move, is woken there and
    /// preempts the handler at once. Pinned at normal priority, the handler's CPU was busy at
    /// that moment, the scheduler woke the thread on the other CPU at every fault
    /// (`sched_migrate_task`, traced) and the handler chased it: 113–147 µs per 2 MiB CPU
    /// fault, no better than the scheduler's placement; at idle priority a median of 43 µs,
    /// 1.31–1.36x the bare move, in six unpinned runs of `svm-cli bench fault
    /// --handler-placement follow-faulting-thread` (4 KiB: 12.5 µs against 62 µs placed by
    /// the scheduler; 64 KiB: 14 µs against 63 µs), as fast as with every thread on one CPU.
    ///
    /// Not the default, because of what it costs: pinned to one CPU at idle priority, the
    /// handler runs there only when nothing else wants that CPU. A thread that keeps it busy
    /// without faulting (the faulting thread computing, another thread of the program) delays
    /// every event the handler has to read — another thread's fault, an `munmap` that waits
    /// for its event — until that thread sleeps, or for as long as the scheduler gives an
    /// idle-priority thread nothing (the context's watchdog reports such stalls). Suits one
    /// thread touching device-resident data with its CPU to itself, on a machine whose
    /// cross-CPU wake-ups are costly (a VM without idle polling).
    case followFaultingThread = "follow-faulting-thread"
}

/// The handler thread's state for ``HandlerPlacement/followFaultingThread``: which thread it
/// follows and the CPU it is pinned to. Used by the handler thread only.
struct FaultingThreadFollower {
    /// The CPUs the handler may run on, read when it started: it is pinned only to one of them.
    private let allowed: [Int]
    /// The thread whose CPU was looked up last (0: none yet).
    private var followed: Int32 = 0
    /// Faults served since that lookup.
    private var faultsSinceLookup = 0
    /// The CPU the handler is pinned to, `nil` before the first pin.
    private(set) var pinnedCPU: Int?

    /// A thread's CPU is looked up again after this many of its faults: the lookup reads
    /// `/proc/self/task/<tid>/stat` (three system calls, about 5 µs here), and a thread
    /// rarely changes CPU while it faults, so once per fault would add 5 µs to a 4 KiB fault
    /// of 10–20 µs for nothing.
    static let lookupInterval = 64

    /// For the calling thread, the handler, which it puts at idle priority (see
    /// ``HandlerPlacement/followFaultingThread``; the call cannot fail for the calling thread
    /// of an unprivileged process, lowering a priority needs no privilege).
    init() {
        allowed = (try? CPUAffinity.allowed()) ?? []
        var parameters = sched_param()
        _ = sched_setscheduler(0, Self.idlePolicy, &parameters)
    }

    /// `SCHED_IDLE` of `<sched.h>`, which Swift does not import.
    static let idlePolicy: Int32 = 5

    /// The handler served a fault of thread `threadID` (0: unknown, the kernel gave none):
    /// pins the handler to that thread's CPU when it is time to look and the CPU changed.
    mutating func served(faultOf threadID: Int32) {
        guard threadID > 0, allowed.count > 1 else { return }
        faultsSinceLookup += 1
        guard threadID != followed || faultsSinceLookup >= Self.lookupInterval else { return }
        followed = threadID
        faultsSinceLookup = 0
        let cpu = Int(svm_thread_last_cpu(threadID))
        guard cpu >= 0, cpu != pinnedCPU, allowed.contains(cpu) else { return }
        if svm_affinity_pin(Int32(cpu)) == 0 { pinnedCPU = cpu }
    }
}
