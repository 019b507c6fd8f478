import CSVMPlatform
import DequeModule
import Glibc
import SVMPluginKit
import Synchronization

/// What the mirror hands to the SVM layer: CPU faults and address-space changes.
///
/// Called on the mirror's handler thread, one call at a time. An implementation must never
/// block on something another thread holds while that thread may need the handler (a
/// migration moving pages, a thread waiting in `munmap`): it answers
/// ``CPUFaultDisposition/deferred`` instead and the mirror asks again later.
protocol CPUMirrorClient: AnyObject, Sendable {
    /// A thread touched the missing page at `address` (page-aligned) and sleeps until it is
    /// filled and woken.
    func serviceCPUFault(address: UInt64, write: Bool) -> CPUFaultDisposition
    /// `munmap`, `madvise(MADV_DONTNEED)` or `mremap` changed registered memory: the MMU
    /// notifier callback.
    func addressSpaceChanged(_ event: UserFaultFDEvent)
}

/// How a CPU fault was handled.
enum CPUFaultDisposition {
    /// The page is in place and the thread woken.
    case resolved
    /// A migration owns the page's range: ask again when it is done.
    case deferred
}

/// The CPU side of the mirror: one userfaultfd for the SVM space, registered on the ranges
/// devices use, and one handler thread that serves their CPU faults and turns unmap,
/// remove and remap events into invalidations.
///
/// ## Threads
/// The handler thread only reads events and resolves faults; it never unmaps, discards or
/// remaps registered memory (the kernel would make it wait for itself). Other threads may
/// register ranges and move pages at any time: the kernel serializes the ioctls.
final class CPUMirror: @unchecked Sendable {
    let faults: UserFaultFD
    let staging = StagingPool()
    /// Moves pages with `faults`, stepping over holes (see ``PageMover``).
    let mover: PageMover
    /// Every unmap, discard and remap read, for migrations putting data back.
    let log = AddressSpaceLog()
    /// Protection changes seen (not through userfaultfd), for device faults' commits.
    let protection = ProtectionChanges()
    /// What the handler thread is doing, for the context's watchdog: when it started serving
    /// the current fault or event (nanoseconds of `CLOCK_MONOTONIC`, 0 when idle) and at
    /// which address.
    private let workStarted = Atomic<Int64>(0)
    /// The handler thread's kernel id, for reports; 0 until it runs.
    private let handlerTID = Atomic<Int32>(0)
    private let workAddress = Atomic<UInt64>(0)
    /// Set once by ``start(client:)``, before the handler thread runs; read-only after.
    private weak var client: (any CPUMirrorClient)?
    private let stopping = Atomic<Bool>(false)
    /// Read attempts of the event queue started so far, each a ticket: taken before the
    /// `read` that lets an munmap/mremap/madvise caller go on, so that caller, once its call
    /// returns, waits for at least this ticket (see ``waitUntilEventsHandled(deadline:)``).
    /// Written by the handler thread only.
    private let readsStarted = Atomic<UInt64>(0)
    /// Every read attempt up to this ticket has been handled (its event dispatched, or it
    /// found none). Written by the handler thread only; it never decreases.
    private let handledThrough = Atomic<UInt64>(0)
    /// Signalled when ``handledThrough`` grows, for ``waitUntilEventsHandled(deadline:)``.
    private let handled = ChangeSignal()
    /// Signalled when the handler has read an event, for threads waiting for an address
    /// space change to proceed (``letMappingChangeProceed()``).
    private let eventRead = ChangeSignal()
    /// How long a thread off the handler waits for it to read a pending event before it
    /// looks again: the handler reads within microseconds unless it is busy serving a fault.
    private static let eventReadWait: Duration = .microseconds(20)
    /// How long ``waitUntilEventsHandled(deadline:)`` sleeps at a time before it looks again (the
    /// signal wakes it sooner): a bound in case a wake is missed, not a poll interval.
    private static let handledWait: Duration = .milliseconds(1)
    /// The handler thread, for ``isHandlerThread``; written once before it runs.
    private var handler = pthread_t()
    private let started = Atomic<Bool>(false)
    private let stopped = Locked(false)
    // Handler-thread state: events read ahead while resolving, and faults waiting for a
    // migration to finish. Only the handler thread touches them.
    private var backlog: Deque<(event: UserFaultFDEvent, ticket: UInt64)> = []
    /// Whether the handler is dispatching an event: a read meanwhile that finds none does not
    /// mean every earlier read is handled.
    private var dispatching = false
    private var deferredFaults: [(address: UInt64, write: Bool)] = []
    /// Where the handler thread runs; set once at init.
    let placement: HandlerPlacement
    /// With ``HandlerPlacement/followFaultingThread``, the thread it follows; created by
    /// the handler thread when it starts, and only touched by it.
    private var follower: FaultingThreadFollower?

    /// The events the mirror needs: its MMU notifiers. `UFFDIO_MOVE` is what migration needs.
    static let requiredFeatures: UserFaultFD.Features = [.eventUnmap, .eventRemove, .eventRemap]

    /// Opens the mirror's userfaultfd; with `kernelFaults` `.whenPermitted`, one that sees
    /// kernel-mode faults where the process may have it. `placement` says where the handler
    /// thread runs.
    init(kernelFaults: KernelFaults = .whenPermitted, placement: HandlerPlacement = .scheduler) throws(UserFaultFDError) {
        self.placement = placement
        // The faulting thread's id, for the handler to follow it.
        let optional: UserFaultFD.Features = placement == .followFaultingThread ? [.move, .poison, .threadID] : [.move, .poison]
        faults = switch kernelFaults {
        case .whenPermitted: try UserFaultFD.openPreferringKernelFaults(required: Self.requiredFeatures, optional: optional)
        case .never: try UserFaultFD(required: Self.requiredFeatures, optional: optional, opening: .userModeOnly)
        }
        mover = PageMover(faults: faults, pageMap: PageMap())
    }

    /// Whether pages can migrate: the kernel moves pages (`UFFDIO_MOVE`, Linux 6.8).
    var canMigrate: Bool { faults.supportsMove }

    /// Starts the handler thread.
    func start(client: any CPUMirrorClient) {
        precondition(!started.exchange(true, ordering: .acquiringAndReleasing), "mirror started twice")
        self.client = client
        startThread(&handler, named: "CPU fault handler") { self.run() }
    }

    /// Stops the handler thread, waits for it, and ends the userfaultfd (every range is
    /// unregistered; CPU faults are the kernel's again).
    func stop() {
        let alreadyStopped = stopped.withLock { done in defer { done = true }; return done }
        guard started.load(ordering: .acquiring), !alreadyStopped else { return }
        stopping.store(true, ordering: .releasing)
        if !isHandlerThread { pthread_join(handler, nil) }
        // Nobody reads events now: end the userfaultfd, or the next munmap of memory it
        // watched would wait forever for its event to be read.
        faults.retire()
        staging.stop()
    }

    /// Registers a range for missing faults and address-space events.
    func register(_ interval: AddressInterval) throws(UserFaultFDError) {
        try faults.register(UInt(interval.start), length: Int(interval.size), modes: .missing)
    }

    /// Registers device memory that is host memory (zero-copy) as a destination of moves
    /// only: `UFFDIO_MOVE` wants its destination registered with this descriptor, in any
    /// mode. Write-protect mode, with nothing ever write-protected, raises no fault: a
    /// device's first touch of a page never written is the kernel's own fault, which maps
    /// zeros, and never waits for the handler thread (which may be the thread touching).
    func registerForMoves(_ interval: AddressInterval) throws(UserFaultFDError) {
        try faults.register(UInt(interval.start), length: Int(interval.size), modes: .writeProtect)
    }

    /// Whether the calling thread is the handler thread.
    var isHandlerThread: Bool {
        started.load(ordering: .acquiring) && pthread_equal(pthread_self(), handler) != 0
    }

    /// Called by code that got ``UserFaultFD/RangeOutcome/mappingChanging``: an unmap,
    /// remove or remap event is queued, and its thread waits until the event is read. On the
    /// handler thread this reads the next queued event into the backlog (handled next); on any
    /// other thread it gives the handler a moment.
    ///
    /// `deferrable`: the caller can give up and be tried again later (a CPU fault). Then, on
    /// the handler thread, no event is read once ``readAheadLimit`` are waiting in the
    /// backlog, and the result is false: give up. A thread discarding page after page queues
    /// its next change as soon as the last is read, so a fault retrying its zero fill kept
    /// reading, and the backlog grew to 80,000 events, which a device's kernel-mode fault
    /// then waited behind. Work that must finish (putting data back) always reads: nothing
    /// else lets the change proceed.
    @discardableResult
    func letMappingChangeProceed(deferrable: Bool = false) -> Bool {
        if isHandlerThread {
            if deferrable && backlog.count >= Self.readAheadLimit { return false }
            // Events read here are handled by the handler's loop before it waits again.
            // One event, not every queued one: reading all of them each time made the
            // backlog grow faster than it drained.
            if let read = readEvent() { backlog.append(read) } else { markHandled() }
        } else {
            // The handler reads the event that holds the change: wait for that, briefly.
            eventRead.wait(whileAt: eventRead.generation, timeout: Self.eventReadWait)
        }
        return true
    }

    /// Events a deferrable retry may read ahead of the handler's loop: one, so that each
    /// event the loop handles lets a deferred fault try once more right after a read.
    private static let readAheadLimit = 1

    // MARK: handler thread

    /// The kernel id of the handler thread (0 before it runs).
    var handlerThreadID: Int32 { handlerTID.load(ordering: .relaxed) }

    private func run() {
        handlerTID.store(svm_thread_id(), ordering: .relaxed)
        if placement == .followFaultingThread { follower = FaultingThreadFollower() }
        while !stopping.load(ordering: .acquiring) {
            // Deferred faults wait for a migration on another thread: look again soon.
            let timeout: Duration = deferredFaults.isEmpty && backlog.isEmpty ? .milliseconds(50) : .microseconds(200)
            let readable: Bool
            do {
                readable = try faults.waitUntilReadable(timeout: timeout)
            } catch {
                // poll on our own descriptor fails only for programming errors.
                fatalError("CPU mirror: \(error)")
            }
            if readable || !backlog.isEmpty { handleEvents() }
            retryDeferredFaults()
        }
    }

    /// Handles the events read ahead, then every queued one, in the order they were read.
    private func handleEvents() {
        while true {
            if let next = backlog.popFirst() {
                dispatchCounted(next.event)
            } else if let read = readEvent() {
                dispatchCounted(read.event)
            } else {
                markHandled()
                break
            }
            // A stream of events (a thread discarding page after page) could keep this loop
            // going for ever: faults waiting for a migration get their turn in between.
            retryDeferredFaults()
        }
    }

    /// Dispatches an event, then advances ``handledThrough``: events are dispatched in the
    /// order they were read, so every ticket before the first one still in the backlog is
    /// handled.
    private func dispatchCounted(_ event: UserFaultFDEvent) {
        dispatching = true
        dispatch(event)
        dispatching = false
        markHandled()
    }

    /// Advances ``handledThrough`` as far as the handler's state allows (handler thread).
    private func markHandled() {
        guard !dispatching else { return }
        let through = backlog.first.map { $0.ticket - 1 } ?? readsStarted.load(ordering: .relaxed)
        guard through > handledThrough.load(ordering: .relaxed) else { return }
        handledThrough.store(through, ordering: .sequentiallyConsistent)
        handled.signal()
    }

    /// Waits until the events read so far are handled. A device fault and a kernel launch
    /// call it first: the program may have unmapped, discarded or remapped memory, and seen
    /// the call return, before the handler has invalidated device mappings of it and moved
    /// device-resident data to its new place. (The kernel lets the caller go on when the
    /// event is read, not when it is handled, as an MMU notifier would.)
    ///
    /// Only the events read before the call: a thread that keeps changing the address space
    /// keeps the handler busy for as long as it does, and a wait for an idle handler made
    /// device faults wait as long.
    /// Returns false if they were still not handled at `deadline` (the handler is stuck: the
    /// context's watchdog reports it).
    @discardableResult
    func waitUntilEventsHandled(deadline: ContinuousClock.Instant) -> Bool {
        guard !isHandlerThread else { return true }
        let target = readsStarted.load(ordering: .sequentiallyConsistent)
        while true {
            let generation = handled.generation
            guard handledThrough.load(ordering: .sequentiallyConsistent) < target else { return true }
            guard ContinuousClock.now < deadline else { return false }
            handled.wait(whileAt: generation, timeout: Self.handledWait)
        }
    }

    /// Since when the handler thread has been serving its current fault or event, and where;
    /// `nil` when it waits for work.
    var handlerWork: (startedNanoseconds: Int64, address: UInt64)? {
        let started = workStarted.load(ordering: .acquiring)
        return started == 0 ? nil : (started, workAddress.load(ordering: .relaxed))
    }

    /// Runs `body`, one piece of the handler's work at `address`, visible to ``handlerWork``.
    private func working<T>(at address: UInt64, _ body: () -> T) -> T {
        workAddress.store(address, ordering: .relaxed)
        workStarted.store(monotonicNanoseconds(), ordering: .releasing)
        defer { workStarted.store(0, ordering: .releasing) }
        return body()
    }

    /// Reads the next event, if one is queued, and logs the address-space change it
    /// announces, in one step (see ``AddressSpaceLog/withChanges(since:_:)``): from the read
    /// on the kernel makes the change, and migrations in flight must follow it.
    private func readEvent() -> (event: UserFaultFDEvent, ticket: UInt64)? {
        // The ticket is taken before the read: its caller may return at once after it.
        let ticket = readsStarted.add(1, ordering: .sequentiallyConsistent).newValue
        return log.recording {
            guard let event = try? faults.readEvent() else { return nil }
            logChange(event)
            eventRead.signal()
            return (event, ticket)
        }
    }

    private func logChange(_ event: UserFaultFDEvent) {
        switch event {
        case .unmap(let start, let end), .remove(let start, let end):
            log.append(.discarded(AddressInterval(start: UInt64(start), end: UInt64(end))))
        case .remap(let from, let to, let length):
            log.append(.remapped(from: UInt64(from), to: UInt64(to), length: UInt64(length)))
        case .pagefault, .fork:
            break
        }
    }

    private func dispatch(_ event: UserFaultFDEvent) {
        guard let client else { return }
        switch event {
        case .pagefault(let address, let isWrite, _, let threadID):
            if working(at: UInt64(address), { client.serviceCPUFault(address: UInt64(address), write: isWrite) }) == .deferred {
                deferredFaults.append((UInt64(address), isWrite))
            }
            // After the fault: the faulting thread is not kept waiting for the lookup.
            follower?.served(faultOf: threadID)
        case .unmap(let start, _), .remove(let start, _), .remap(let start, _, _):
            working(at: UInt64(start)) { client.addressSpaceChanged(event) }
            log.markHandled()
        case .fork:
            break  // not requested
        }
    }

    private func retryDeferredFaults() {
        guard let client, !deferredFaults.isEmpty else { return }
        let waiting = deferredFaults
        deferredFaults.removeAll()
        for fault in waiting where working(at: fault.address, { client.serviceCPUFault(address: fault.address, write: fault.write) }) == .deferred {
            deferredFaults.append(fault)
        }
    }
}
