import Histogram
import SVMPluginKit

/// An experiment's simulated time: turns what the devices and the SVM layer did (kernel
/// results and the ``SVMActivityLog``) into time on a discrete-event clock, with copy
/// engines and the links of the topology (a ``SimulatedNetwork``) shared by the transfers
/// in flight.
///
/// ## How a phase is timed
/// The experiment runs phases one after another, each on the real system first, then here:
/// - **Kernel**: its fault batches in order, each one ``TimingParameters/faultServiceNanoseconds``
///   of driver time plus the DMA mapping of its bindings (``TimingParameters/dma``), then its
///   migrations — the migrations of one fault in sequence (an eviction before the migration
///   it makes room for), those of different faults at once on the copy engines and the
///   links. Then its execution (the device's ``KernelActivity/busyNanoseconds``) while its
///   remote reads and writes cross the link; it ends when both have. Stalls do not overlap
///   with execution: a GPU would run other warps meanwhile, so kernels with many faults
///   come out somewhat slower than real.
/// - **Kernels on several devices overlap**: each device runs its kernels in order (a
///   stream), and a kernel starts once its device is free and every earlier kernel it
///   depends on has ended — one whose memory (``KernelFootprint``-style read and write
///   intervals, given with ``kernel(_:on:result:activity:reads:writes:)``) overlaps its own
///   with a write on either side. A kernel without intervals depends on every earlier one.
///   Kernels are timed when the next CPU phase starts, or when a result is read.
/// - **CPU**: it waits for every kernel launched before it; each CPU fault that migrates
///   data back costs ``TimingParameters/cpuFaultNanoseconds`` then its copy over the link,
///   one after another (one CPU thread); then the bytes the phase touched at
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
    private let network: SimulatedNetwork
    private var devices: [UInt64: SimulatedDevice] = [:]
    private var deviceOrder: [UInt64] = []
    /// Each device's location in the topology (``DeviceInfo/location``), for the direction
    /// in which a peer path crosses its hops.
    private var locations: [UInt64: String] = [:]
    /// Peer paths by (from, to), in the order they were added.
    private var peerLinks: [SimulatedPeerLink] = []
    /// The channels of the hops of peer paths, one per link direction, in the order first
    /// used; with their link and trace lane.
    private var hops: [(key: HopKey, link: TopologyLink, channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane)] = []
    /// Trace processes of the links, by link name.
    private var linkProcesses: [String: Int] = [:]
    /// The peer whose memory each device last mapped in place: where its kernels' peer
    /// accesses go (a kernel reports peer bytes in total, not per peer).
    private var mappedPeer: [UInt64: UInt64] = [:]
    private var faultService = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000)
    /// Kernels launched and not timed yet (see ``synchronize()``).
    private var pending: [PendingKernel] = []
    /// Where spans go, when tracing.
    public let trace: TraceRecorder?
    private static let cpuLane = TraceRecorder.Lane(process: 1, thread: 1)

    private struct HopKey: Hashable {
        let link: String
        let from: String
    }

    /// A kernel launched, waiting to be timed.
    private struct PendingKernel {
        let name: String
        let deviceID: UInt64
        let result: KernelResult
        let activity: [SVMActivityLog.Entry]
        /// What it read and wrote; `nil`: everything (it depends on every earlier kernel).
        let reads: [AddressInterval]?
        let writes: [AddressInterval]?

        /// Whether this kernel must wait for `earlier`: same device, or memory one writes
        /// that the other uses.
        func dependsOn(_ earlier: PendingKernel) -> Bool {
            guard earlier.deviceID != deviceID, let reads, let writes, let earlierReads = earlier.reads,
                let earlierWrites = earlier.writes
            else { return true }
            func overlap(_ a: [AddressInterval], _ b: [AddressInterval]) -> Bool { a.contains { x in b.contains { x.overlaps($0) } } }
            return overlap(writes, earlierWrites) || overlap(writes, earlierReads) || overlap(reads, earlierWrites)
        }
    }

    /// The simulated time now, every kernel launched so far having ended.
    public var now: UInt64 {
        synchronize()
        return queue.now
    }

    public init(parameters: TimingParameters, trace: TraceRecorder? = nil) {
        self.parameters = parameters
        self.trace = trace
        network = SimulatedNetwork(queue: queue, halfEfficiencyBytes: parameters.link.halfEfficiencyBytes)
        trace?.name(Self.cpuLane, process: "CPU", thread: "program")
    }

    /// Adds a device and its link to the host; `location` is its place in the topology
    /// (what peer paths' hops name it), if it has one. `hostRoute`: the topology's links
    /// from the device up to the root complex (see ``DeviceTopology/hostRoute(of:)``), which
    /// its host traffic crosses, shared with every other route over them; empty: a link of
    /// its own, ``TimingParameters/link``.
    public func addDevice(id: UInt64, name: String, location: String = "", hostRoute: [TopologyLink] = []) {
        let process = 2 + 2 * devices.count
        let routes: (toDevice: SimulatedRoute, toHost: SimulatedRoute)
        if hostRoute.isEmpty {
            routes = (SimulatedRoute(parameters.link, network: network, queue: queue), SimulatedRoute(parameters.link, network: network, queue: queue))
        } else {
            let up = crossing(hostRoute, from: location)
            let down = crossing(hostRoute.reversed(), from: up.end)
            // Named by what the links are when they are all alike (PCIe of one generation
            // and width, as P2PFabric's), then by the links crossed.
            let links = hostRoute.map { "\($0.kind == .pcie ? "PCIe Gen\($0.pcieGeneration) x\($0.lanes)" : $0.kind.rawValue)" }
            let kind = Set(links).count == 1 ? "\(links[0]) via " : ""
            routes = (route(down.hops, prefix: kind), route(up.hops, prefix: kind))
        }
        devices[id] = SimulatedDevice(name: name, parameters: parameters, queue: queue, routes: routes, trace: trace, process: process)
        deviceOrder.append(id)
        locations[id] = location
    }

    /// A route over `hops` (channels and lanes, in order), named by its links after `prefix`.
    private func route(
        _ hops: [(channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane, link: TopologyLink)], prefix: String = ""
    ) -> SimulatedRoute {
        SimulatedRoute(
            name: prefix + hops.map(\.link.name).joined(separator: " + "), channels: hops.map(\.channel), lanes: hops.map(\.lane),
            network: network, queue: queue, trace: trace)
    }

    /// The channels of `links` crossed in order from node `start`, and the node reached.
    private func crossing(_ links: some Sequence<TopologyLink>, from start: String)
        -> (hops: [(channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane, link: TopologyLink)], end: String)
    {
        var node = start
        var hops: [(channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane, link: TopologyLink)] = []
        for link in links {
            // The direction it is crossed in: away from the node reached so far (a hop
            // joining neither end is taken as crossed A to B).
            let forward = link.endA == node || link.endB != node
            let from = forward ? link.endA : link.endB
            node = forward ? link.endB : link.endA
            let (channel, lane) = hop(link, from: from, to: node)
            hops.append((channel, lane, link))
        }
        return (hops, node)
    }

    /// Adds the peer path from device `from` to device `to`'s memory, which direct
    /// migrations and in-place accesses between them cross (both devices added before).
    /// Paths that cross the same link in the same direction share its channel.
    public func addPeerPath(from: UInt64, to: UInt64, path: PeerPath) {
        precondition(devices[from] != nil && devices[to] != nil, "a peer path between unknown devices")
        let hops = crossing(path.hops, from: locations[from] ?? "").hops
        peerLinks.append(SimulatedPeerLink(from: from, to: to, path: path, route: route(hops)))
    }

    /// The channel of `link` in the direction `from` → `to`, made on first use.
    private func hop(_ link: TopologyLink, from: String, to: String) -> (channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane) {
        let key = HopKey(link: link.name, from: from)
        if let known = hops.first(where: { $0.key == key }) { return (known.channel, known.lane) }
        // Trace processes after the devices' (2 + 2 per device): one per link, a thread per
        // direction.
        let process = linkProcesses[link.name] ?? {
            let process = 1000 + linkProcesses.count
            linkProcesses[link.name] = process
            return process
        }()
        let lane = TraceRecorder.Lane(process: process, thread: from == link.endA ? 1 : 2)
        trace?.name(lane, process: "link \(link.name) (\(link.kind.rawValue))", thread: "\(from)→\(to)")
        let channel = network.addChannel(
            name: "\(link.name) \(from)→\(to)", bytesPerSecond: Double(link.bandwidthBytesPerSecond), latencyNanoseconds: link.latencyNanoseconds)
        hops.append((key, link, channel, lane))
        return (channel, lane)
    }

    // MARK: Phases

    /// Records a kernel that ran on device `deviceID`, with what the SVM layer did for it, to
    /// be timed with the kernels around it (see the type's overview).
    /// - Parameters:
    ///   - reads: the memory it read; `nil` (with `writes`): it depends on every earlier kernel.
    ///   - writes: the memory it wrote.
    public func kernel(
        _ name: String, on deviceID: UInt64, result: KernelResult, activity: [SVMActivityLog.Entry],
        reads: [AddressInterval]? = nil, writes: [AddressInterval]? = nil
    ) {
        guard devices[deviceID] != nil else { preconditionFailure("kernel on an unknown device \(deviceID)") }
        pending.append(PendingKernel(
            name: name, deviceID: deviceID, result: result, activity: activity, reads: reads, writes: reads == nil ? nil : writes ?? []))
    }

    /// Times every kernel launched and not timed yet: each starts when its device is free
    /// and the earlier kernels it depends on have ended.
    public func synchronize() {
        guard !pending.isEmpty else { return }
        let kernels = pending
        pending.removeAll()
        var waitingFor = [Int](repeating: 0, count: kernels.count)
        var dependents = [[Int]](repeating: [], count: kernels.count)
        for later in kernels.indices {
            var lastOnDevice: Int?
            for earlier in (0..<later).reversed() where kernels[later].dependsOn(kernels[earlier]) {
                // One edge to the device's last kernel is enough for its stream order.
                if kernels[earlier].deviceID == kernels[later].deviceID {
                    guard lastOnDevice == nil else { continue }
                    lastOnDevice = earlier
                }
                waitingFor[later] += 1
                dependents[earlier].append(later)
            }
        }
        var left = kernels.count
        func start(_ index: Int) {
            time(kernels[index]) {
                left -= 1
                for next in dependents[index] {
                    waitingFor[next] -= 1
                    if waitingFor[next] == 0 { start(next) }
                }
            }
        }
        for index in kernels.indices where waitingFor[index] == 0 { start(index) }
        queue.run(until: { left == 0 })
        precondition(left == 0, "simulated kernels never finished")
    }

    /// Times one kernel from now: its fault batches one after another, then its execution
    /// with its remote accesses; `done` at its end.
    private func time(_ kernel: PendingKernel, done: @escaping () -> Void) {
        let device = devices[kernel.deviceID]!
        let result = kernel.result
        let start = queue.now
        device.statistics.kernels += 1
        device.count(result.activity)
        for entry in kernel.activity {
            if case .peerMapping(let importer, let owner, _) = entry { mappedPeer[importer] = owner }
        }
        let owner = mappedPeer[kernel.deviceID]
        var batches = Self.batches(kernel.activity)[...]
        func execute() {
            let executionStart = queue.now
            let executionEnd = executionStart + result.activity.busyNanoseconds
            var remote: [(@escaping () -> Void) -> Void] = [{ done in self.queue.schedule(at: executionEnd, done) }]
            if result.activity.systemBytesRead > 0 {
                remote.append { done in device.remote(bytes: result.activity.systemBytesRead, toDevice: true, done: done) }
            }
            if result.activity.systemBytesWritten > 0 {
                remote.append { done in device.remote(bytes: result.activity.systemBytesWritten, toDevice: false, done: done) }
            }
            device.statistics.peerBytesRead += result.activity.peerBytesRead
            device.statistics.peerBytesWritten += result.activity.peerBytesWritten
            if let owner {
                // Reads come from the owner's memory, writes go to it.
                if result.activity.peerBytesRead > 0, let link = peerLink(from: owner, to: kernel.deviceID) {
                    remote.append { done in link.transfer("peer reads", bytes: result.activity.peerBytesRead, done: done) }
                }
                if result.activity.peerBytesWritten > 0, let link = peerLink(from: kernel.deviceID, to: owner) {
                    remote.append { done in link.transfer("peer writes", bytes: result.activity.peerBytesWritten, done: done) }
                }
            }
            all(remote) { [self] in
                device.statistics.executionNanoseconds += executionEnd - executionStart
                device.statistics.busyNanoseconds += queue.now - start
                trace?.span(kernel.name, category: "kernel", lane: device.kernelLane, start: start, end: queue.now,
                            args: ["faults": "\(result.faults)", "bytes": "\(result.bytes)"])
                countLosses(kernel.activity)
                done()
            }
        }
        func nextBatch() {
            guard let batch = batches.popFirst() else { return execute() }
            let batchStart = queue.now
            device.statistics.dma += batch.dma
            let dmaTime = parameters.dma.nanoseconds(batch.dma)
            device.statistics.dmaNanoseconds += dmaTime
            queue.schedule(at: batchStart + parameters.faultServiceNanoseconds + dmaTime) { [self] in
                for fault in batch.faults { device.statistics.count(fault) }
                all(batch.chains.map { chain in { done in self.run(chain, done: done) } }) { [self] in
                    let end = queue.now
                    device.statistics.faultServiceNanoseconds += end - batchStart
                    for _ in batch.faults { _ = faultService.record(end - batchStart) }
                    trace?.span(
                        "fault batch", category: "fault", lane: device.faultLane, start: batchStart, end: end,
                        args: ["faults": "\(batch.faults.count)", "migrations": "\(batch.chains.reduce(0) { $0 + $1.count })"])
                    nextBatch()
                }
            }
        }
        nextBatch()
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
        synchronize()
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

    // Each first times the kernels launched and not timed yet.
    public var deviceStatistics: [DeviceStatistics] {
        synchronize()
        return deviceOrder.map { devices[$0]!.statistics }
    }
    public var linkStatistics: [LinkStatistics] {
        synchronize()
        return deviceOrder.map { devices[$0]!.linkStatistics }
    }
    public var peerLinkStatistics: [PeerLinkStatistics] {
        synchronize()
        let names = devices.mapValues(\.statistics.name)
        return peerLinks.map { $0.statistics(names: names) }
    }
    /// Every link direction of the topology that routes cross (peer paths, host links
    /// through the topology), all of them together, in the order first used.
    public var hopStatistics: [HopStatistics] {
        synchronize()
        return hops.map { hop in
            HopStatistics(
                link: hop.link.name, from: hop.key.from, to: hop.link.otherEnd(than: hop.key.from),
                bandwidthBytesPerSecond: hop.link.bandwidthBytesPerSecond, carried: hop.channel.statistics)
        }
    }
    public var faultServiceLatency: LatencySummary {
        synchronize()
        return LatencySummary(faultService)
    }

    // MARK: Running the clock

    /// Lets simulated time pass until `time` (other events due meanwhile run).
    private func wait(until time: UInt64) {
        var reached = false
        queue.schedule(at: time) { reached = true }
        queue.run(until: { reached })
    }

    /// Starts every task now and calls `then` once all have called their `done` (at once,
    /// when there is none).
    private func all(_ tasks: [(@escaping () -> Void) -> Void], then: @escaping () -> Void) {
        guard !tasks.isEmpty else { return then() }
        var left = tasks.count
        for task in tasks {
            task {
                left -= 1
                if left == 0 { then() }
            }
        }
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
