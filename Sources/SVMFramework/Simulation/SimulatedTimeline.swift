import Histogram
import SVMPluginKit

/// An experiment's simulated time: turns what the devices and the SVM layer did (kernel
/// results and the ``SVMActivityLog``) into time on a discrete-event clock, with copy
/// engines and links shared by the transfers in flight.
///
/// ## How a phase is timed
/// The experiment runs phases one after another, each on the real system first, then here:
/// - **Kernel**: its fault batches in order, each one ``TimingParameters/faultServiceNanoseconds``
///   of driver time plus the DMA mapping of its bindings (``TimingParameters/dma``), then its
///   migrations — the migrations of one fault in sequence (an
///   eviction before the migration it makes room for), those of different faults at once
///   on the copy engines and the link. Then its execution (the device's
///   ``KernelActivity/busyNanoseconds``) while its remote reads and writes cross the link;
///   it ends when both have. Stalls do not overlap with execution: a GPU would run other
///   warps meanwhile, so kernels with many faults come out somewhat slower than real.
/// - **CPU**: each CPU fault that migrates data back costs
///   ``TimingParameters/cpuFaultNanoseconds`` then its copy over the link, one after
///   another (one CPU thread); then the bytes the phase touched at
///   ``TimingParameters/cpuBytesPerSecond``.
///
/// ## Determinism
/// Nothing here reads a wall clock. Simulated time depends only on the phases, their
/// kernel results and the activity log's entries, in order; events due at the same time
/// run in the order they were scheduled. The same experiment and seed give the same entries,
/// hence the same times, statistics and trace.
///
/// Not thread-safe: it belongs to the thread that drives the experiment.
public final class SimulatedTimeline {
    public let parameters: TimingParameters
    private let queue = EventQueue()
    private var devices: [UInt64: SimulatedDevice] = [:]
    private var deviceOrder: [UInt64] = []
    /// Peer paths by (from, to), in the order they were added.
    private var peerLinks: [SimulatedPeerLink] = []
    /// The peer whose memory each device last mapped in place: where its kernels' peer
    /// accesses go (a kernel reports peer bytes in total, not per peer).
    private var mappedPeer: [UInt64: UInt64] = [:]
    private var faultService = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000)
    /// Where spans go, when tracing.
    public let trace: TraceRecorder?
    private static let cpuLane = TraceRecorder.Lane(process: 1, thread: 1)

    /// The simulated time now, in nanoseconds.
    public var now: UInt64 { queue.now }

    public init(parameters: TimingParameters, trace: TraceRecorder? = nil) {
        self.parameters = parameters
        self.trace = trace
        trace?.name(Self.cpuLane, process: "CPU", thread: "program")
    }

    /// Adds a device and its link to the host.
    public func addDevice(id: UInt64, name: String) {
        let process = 2 + 2 * devices.count
        devices[id] = SimulatedDevice(
            name: name, parameters: parameters, queue: queue, trace: trace, process: process)
        deviceOrder.append(id)
    }

    /// Adds the peer path from device `from` to device `to`'s memory, which direct
    /// migrations between them cross (both devices added before).
    public func addPeerPath(from: UInt64, to: UInt64, path: PeerPath) {
        precondition(devices[from] != nil && devices[to] != nil, "a peer path between unknown devices")
        // Trace processes after the devices' (2 + 2 per device): one per path.
        peerLinks.append(SimulatedPeerLink(
            from: from, to: to, names: (devices[from]!.statistics.name, devices[to]!.statistics.name), path: path,
            halfEfficiencyBytes: parameters.link.halfEfficiencyBytes, queue: queue, trace: trace,
            process: 1000 + peerLinks.count))
    }

    // MARK: Phases

    /// Times a kernel that ran on device `deviceID`, with what the SVM layer did for it.
    public func kernel(_ name: String, on deviceID: UInt64, result: KernelResult, activity: [SVMActivityLog.Entry]) {
        guard let device = devices[deviceID] else { preconditionFailure("kernel on an unknown device \(deviceID)") }
        let start = queue.now
        device.statistics.kernels += 1
        device.count(result.activity)
        for batch in Self.batches(activity) {
            let batchStart = queue.now
            device.statistics.dma += batch.dma
            let dmaTime = parameters.dma.nanoseconds(batch.dma)
            device.statistics.dmaNanoseconds += dmaTime
            wait(until: batchStart + parameters.faultServiceNanoseconds + dmaTime)
            for fault in batch.faults { device.statistics.count(fault) }
            runAtOnce(batch.chains.map { chain in { done in self.run(chain, done: done) } })
            let end = queue.now
            device.statistics.faultServiceNanoseconds += end - batchStart
            for _ in batch.faults { _ = faultService.record(end - batchStart) }
            trace?.span(
                "fault batch", category: "fault", lane: device.faultLane, start: batchStart, end: end,
                args: ["faults": "\(batch.faults.count)", "migrations": "\(batch.chains.reduce(0) { $0 + $1.count })"])
        }
        let executionStart = queue.now
        let executionEnd = executionStart + result.activity.busyNanoseconds
        var remote: [(@escaping () -> Void) -> Void] = [{ done in self.queue.schedule(at: executionEnd, done) }]
        if result.activity.systemBytesRead > 0 {
            remote.append { done in device.remote(bytes: result.activity.systemBytesRead, toDevice: true, done: done) }
        }
        if result.activity.systemBytesWritten > 0 {
            remote.append { done in device.remote(bytes: result.activity.systemBytesWritten, toDevice: false, done: done) }
        }
        for entry in activity {
            if case .peerMapping(let importer, let owner, _) = entry { mappedPeer[importer] = owner }
        }
        device.statistics.peerBytesRead += result.activity.peerBytesRead
        device.statistics.peerBytesWritten += result.activity.peerBytesWritten
        if let owner = mappedPeer[deviceID] {
            // Reads come from the owner's memory, writes go to it.
            if result.activity.peerBytesRead > 0, let link = peerLink(from: owner, to: deviceID) {
                remote.append { done in link.transfer("peer reads", bytes: result.activity.peerBytesRead, done: done) }
            }
            if result.activity.peerBytesWritten > 0, let link = peerLink(from: deviceID, to: owner) {
                remote.append { done in link.transfer("peer writes", bytes: result.activity.peerBytesWritten, done: done) }
            }
        }
        runAtOnce(remote)
        device.statistics.executionNanoseconds += executionEnd - executionStart
        device.statistics.busyNanoseconds += queue.now - start
        trace?.span(name, category: "kernel", lane: device.kernelLane, start: start, end: queue.now,
                    args: ["faults": "\(result.faults)", "bytes": "\(result.bytes)"])
        countLosses(activity)
    }

    /// Counts resets and lost data, marking resets in the trace. They take no simulated
    /// time: the data is gone, and what a reset costs the device is not modelled.
    private func countLosses(_ activity: [SVMActivityLog.Entry]) {
        for entry in activity {
            switch entry {
            case .deviceReset(let deviceID):
                guard let device = devices[deviceID] else { continue }
                device.statistics.resets += 1
                trace?.instant("device reset", category: "fault", lane: device.kernelLane, at: queue.now)
            case .dataLost(let deviceID, let bytes, let cause):
                guard let device = devices[deviceID] else { continue }
                device.statistics.lostRanges += 1
                device.statistics.lostBytes += bytes
                trace?.instant("data lost", category: "fault", lane: device.kernelLane, at: queue.now,
                               args: ["bytes": "\(bytes)", "cause": cause.rawValue])
            case .deviceFault, .migration, .peerMapping, .dmaMapping:
                break
            }
        }
    }

    /// Times a CPU phase that touched `bytes` bytes, with the migrations its faults made.
    public func cpu(_ name: String, bytes: UInt64, activity: [SVMActivityLog.Entry]) {
        let start = queue.now
        for entry in activity {
            guard case .migration(_, _, let bytes, let cause, _) = entry else { continue }
            if cause == .cpuFault { wait(until: queue.now + parameters.cpuFaultNanoseconds) }
            for leg in entry.legs {
                guard let device = devices[leg.deviceID] else { continue }
                runAtOnce([{ done in device.migrate(bytes: bytes, direction: leg.direction, cause: cause, done: done) }])
            }
        }
        wait(until: queue.now + UInt64((Double(bytes) * 1e9 / parameters.cpuBytesPerSecond).rounded(.up)))
        trace?.span(name, category: "cpu", lane: Self.cpuLane, start: start, end: queue.now, args: ["bytes": "\(bytes)"])
        countLosses(activity)
    }

    // MARK: Results

    public var deviceStatistics: [DeviceStatistics] { deviceOrder.map { devices[$0]!.statistics } }
    public var linkStatistics: [LinkStatistics] { deviceOrder.map { devices[$0]!.linkStatistics } }
    public var peerLinkStatistics: [PeerLinkStatistics] {
        let names = devices.mapValues(\.statistics.name)
        return peerLinks.map { $0.statistics(names: names) }
    }
    public var faultServiceLatency: LatencySummary { LatencySummary(faultService) }

    // MARK: Running the clock

    /// Lets simulated time pass until `time` (other events due meanwhile run).
    private func wait(until time: UInt64) {
        var reached = false
        queue.schedule(at: time) { reached = true }
        queue.run(until: { reached })
    }

    /// Starts every task now and runs the clock until all have called their `done`.
    private func runAtOnce(_ tasks: [(@escaping () -> Void) -> Void]) {
        var left = tasks.count
        for task in tasks { task { left -= 1 } }
        queue.run(until: { left == 0 })
        precondition(left == 0, "simulated tasks never finished")
    }

    /// Runs a fault's migrations one after another.
    private func run(_ chain: [Migration], done: @escaping () -> Void) {
        guard let first = chain.first, let device = devices[first.deviceID] else { return done() }
        let next = { self.run(Array(chain.dropFirst()), done: done) }
        if let target = first.peerTarget {
            guard let link = peerLink(from: first.deviceID, to: target), let destination = devices[target] else {
                preconditionFailure("a peer migration without a peer path")
            }
            let engines = parameters.peerCopyEngine == .source ? device : destination
            device.migrate(bytes: first.bytes, toPeer: destination, over: link, cause: first.cause, enginesOf: engines, done: next)
        } else {
            device.migrate(bytes: first.bytes, direction: first.direction, cause: first.cause, done: next)
        }
    }

    private func peerLink(from: UInt64, to: UInt64) -> SimulatedPeerLink? {
        peerLinks.first { $0.from == from && $0.to == to }
    }

    // MARK: Reading the activity log

    struct Migration {
        /// The device whose copy engine moves it: over its host link, or to `peerTarget`.
        let deviceID: UInt64
        let bytes: UInt64
        let direction: SVMActivityLog.Direction
        let cause: SVMActivityLog.Cause
        /// For a direct migration, the device it goes to over their peer path.
        var peerTarget: UInt64? = nil
    }

    struct Batch {
        var faults: [DeviceAccessKind] = []
        /// Per fault, the migrations it made.
        var chains: [[Migration]] = []
        /// The DMA mappings of the batch's bindings (driver time before its migrations).
        var dma = DMAWork()
    }

    /// Groups a kernel's entries by fault batch; migrations belong to the fault before them.
    static func batches(_ activity: [SVMActivityLog.Entry]) -> [Batch] {
        var batches: [Batch] = []
        var current: UInt64? = nil
        for entry in activity {
            switch entry {
            case .deviceFault(_, _, let access, let batch):
                if batches.isEmpty || batch == 0 || batch != current { batches.append(Batch()) }
                current = batch
                batches[batches.count - 1].faults.append(
                    access.contains(.atomic) ? .atomic : access.contains(.write) ? .write : .read)
                batches[batches.count - 1].chains.append([])
            case .migration(let from, let to, let bytes, let cause, let route):
                if batches.isEmpty { batches.append(Batch(faults: [], chains: [[]])) }
                let last = batches.count - 1
                if batches[last].chains.isEmpty { batches[last].chains.append([]) }
                if case .peer = route, case .device(let source) = from, case .device(let target) = to {
                    batches[last].chains[batches[last].chains.count - 1].append(
                        Migration(deviceID: source, bytes: bytes, direction: .toDevice, cause: cause, peerTarget: target))
                }
                for leg in entry.legs {
                    batches[last].chains[batches[last].chains.count - 1].append(
                        Migration(deviceID: leg.deviceID, bytes: bytes, direction: leg.direction, cause: cause))
                }
            case .dmaMapping(_, let work):
                if batches.isEmpty { batches.append(Batch(faults: [], chains: [[]])) }
                batches[batches.count - 1].dma += work
            case .deviceReset, .dataLost, .peerMapping:
                break  // no time (see countLosses; a mapping moves nothing)
            }
        }
        return batches
    }
}
