import Glibc
import SVMPluginKit
import Synchronization

/// Something of the framework's own that made no progress for the fault timeout: a
/// migration, or the CPU mirror's handler thread serving one fault or event.
public struct StallReport: Sendable, Hashable, CustomStringConvertible {
    /// What is stuck, in words: which range, which direction or which address.
    public var what: String
    /// The kernel id of the thread that is stuck.
    public var thread: Int32
    /// How long it had been at it when seen.
    public var stuckFor: Duration

    public var description: String { "\(what) on thread \(thread): no progress for \(stuckFor)" }
}

/// Watches the context's own progress: a thread that looks, a few times per fault timeout,
/// at the migrations under way (``MigrationGate``) and at what the mirror's handler thread is
/// doing (``CPUMirror/handlerWork``), and reports each one that has been at it for longer
/// than the fault timeout, once (``SVMContext/stallReports``, the trace, the `stallsReported`
/// statistic).
///
/// Reporting is all it does: it cannot unstick a thread. What keeps the rest of the process
/// going is that every wait of a device fault ends at the fault's deadline, so the device
/// faults waiting for the stuck party fail with `EAGAIN` instead of hanging.
final class StallWatchdog: @unchecked Sendable {
    private let gate: MigrationGate
    private let mirror: CPUMirror
    private let statistics: SVMStatistics
    private let trace: SVMTrace
    /// The fault timeout, read at each look (it may change); set once by ``start(limit:)``
    /// before the thread runs.
    private var limit: @Sendable () -> Duration = { .seconds(10) }
    private let stopping = Atomic<Bool>(false)
    private let wake = ChangeSignal()
    /// Written once before the thread runs; joined by ``stop()``.
    private var thread = pthread_t()
    private let started = Atomic<Bool>(false)
    private struct Seen {
        var reports: [StallReport] = []
        var migrations: Set<MigrationGate.Passage> = []
        var handlerWork: Int64 = 0
    }
    private let seen = Locked(Seen())

    init(gate: MigrationGate, mirror: CPUMirror, statistics: SVMStatistics, trace: SVMTrace) {
        self.gate = gate
        self.mirror = mirror
        self.statistics = statistics
        self.trace = trace
    }

    var reports: [StallReport] { seen.withLock { $0.reports } }

    func start(limit: @escaping @Sendable () -> Duration) {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.limit = limit
        startThread(&thread, named: "SVM watchdog") { self.run() }
    }

    func stop() {
        guard started.load(ordering: .acquiring), !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        pthread_join(thread, nil)
    }

    private func run() {
        while !stopping.load(ordering: .acquiring) {
            let limit = limit()
            // A quarter of the limit, so that a stall is reported within 1.25 limits; at
            // most once a second and at least every 10 ms.
            let look = min(max(limit / 4, .milliseconds(10)), .seconds(1))
            wake.wait(whileAt: wake.generation, timeout: look)
            guard !stopping.load(ordering: .acquiring) else { return }
            check(limit: limit)
        }
    }

    /// One look: reports what has been at it for longer than `limit` and was not reported.
    func check(limit: Duration) {
        var found: [StallReport] = []
        let now = monotonicNanoseconds()
        for passage in gate.startedBefore(nanoseconds: now - limit.wholeNanoseconds()) {
            let fresh = seen.withLock { $0.migrations.insert(passage).inserted }
            guard fresh else { continue }
            found.append(StallReport(
                what: "migration of \(passage.interval) \(passage.direction)", thread: passage.thread,
                stuckFor: .nanoseconds(now - passage.startedNanoseconds)))
        }
        if let work = mirror.handlerWork {
            let stuck = Duration.nanoseconds(monotonicNanoseconds() - work.startedNanoseconds)
            let fresh = stuck > limit && seen.withLock { seen in
                defer { seen.handlerWork = work.startedNanoseconds }
                return seen.handlerWork != work.startedNanoseconds
            }
            if fresh {
                found.append(StallReport(
                    what: "the CPU fault handler serving a fault or event at 0x\(String(work.address, radix: 16))",
                    thread: mirror.handlerThreadID, stuckFor: stuck))
            }
        }
        guard !found.isEmpty else { return }
        seen.withLock { $0.reports.append(contentsOf: found) }
        for report in found {
            statistics.stallsReported.count()
            trace.record("watchdog: \(report)", AddressInterval(start: 0, end: .max))
        }
    }
}
