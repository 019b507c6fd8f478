import SVMPluginKit

/// One device of a ``SimulatedTimeline``: its copy engines, its link to the host (a route
/// per direction: a channel of its own, or the topology's links up to the root complex)
/// and its statistics.
final class SimulatedDevice {
    var statistics: DeviceStatistics
    let engines: CopyEngines
    let toDevice: SimulatedRoute
    let toHost: SimulatedRoute
    private let queue: EventQueue
    private let trace: TraceRecorder?
    let kernelLane: TraceRecorder.Lane
    let faultLane: TraceRecorder.Lane
    private let linkProcess: Int

    init(
        name: String, parameters: TimingParameters, queue: EventQueue, routes: (toDevice: SimulatedRoute, toHost: SimulatedRoute),
        trace: TraceRecorder?, process: Int
    ) {
        statistics = DeviceStatistics(name: name)
        engines = CopyEngines(count: parameters.copyEngines, bytesPerSecond: parameters.copyEngineBytesPerSecond)
        (toDevice, toHost) = routes
        self.queue = queue
        self.trace = trace
        kernelLane = TraceRecorder.Lane(process: process, thread: 1)
        faultLane = TraceRecorder.Lane(process: process, thread: 2)
        linkProcess = process + 1
        trace?.name(kernelLane, process: name, thread: "kernels")
        trace?.name(faultLane, process: name, thread: "fault batches")
        for engine in 0..<parameters.copyEngines {
            trace?.name(engineLane(engine), process: linkName, thread: "copy engine \(engine)")
        }
        trace?.name(remoteLane(toDevice: true), process: linkName, thread: "remote reads (host→device)")
        trace?.name(remoteLane(toDevice: false), process: linkName, thread: "remote writes (device→host)")
    }

    private var linkName: String { "\(toDevice.name): host↔\(statistics.name)" }
    private func engineLane(_ engine: Int) -> TraceRecorder.Lane { .init(process: linkProcess, thread: 1 + engine) }
    private func remoteLane(toDevice: Bool) -> TraceRecorder.Lane { .init(process: linkProcess, thread: toDevice ? 100 : 101) }

    func count(_ activity: KernelActivity) {
        statistics.faultBatches += activity.faultBatches
        statistics.accesses += activity.accesses
        statistics.tlbHits += activity.tlbHits
        statistics.tlbMisses += activity.tlbMisses
        statistics.remoteBytesRead += activity.systemBytesRead
        statistics.remoteBytesWritten += activity.systemBytesWritten
    }

    /// Moves a range's data on a copy engine over the link; `done` when it arrived.
    func migrate(bytes: UInt64, direction: SVMActivityLog.Direction, cause: SVMActivityLog.Cause, done: @escaping () -> Void) {
        switch direction {
        case .toDevice:
            statistics.migrationsToDevice += 1
            statistics.bytesToDevice += bytes
        case .toSystem:
            statistics.migrationsToSystem += 1
            statistics.bytesToSystem += bytes
            if cause == .eviction { statistics.evictions += 1 }
        }
        let channel = direction == .toDevice ? toDevice : toHost
        engines.acquire { [queue, engines, trace] engine in
            let start = queue.now
            channel.transfer(bytes: bytes, capBytesPerSecond: engines.bytesPerSecond, span: direction == .toDevice ? "migrate to \(self.statistics.name)" : "migrate from \(self.statistics.name)") { end in
                trace?.span(
                    direction == .toDevice ? "migrate to device" : "migrate to system", category: "migration",
                    lane: self.engineLane(engine), start: start, end: end,
                    args: ["bytes": "\(bytes)", "cause": cause.rawValue])
                engines.release(engine)
                done()
            }
        }
    }

    /// Moves a range's data from this device's memory into `peer`'s over their peer path, on
    /// a copy engine of `owner` (this device or the peer); `done` when it arrived.
    func migrate(
        bytes: UInt64, toPeer peer: SimulatedDevice, over link: SimulatedPeerLink, cause: SVMActivityLog.Cause,
        enginesOf owner: SimulatedDevice, done: @escaping () -> Void
    ) {
        statistics.migrationsToPeers += 1
        statistics.bytesToPeers += bytes
        peer.statistics.migrationsFromPeers += 1
        peer.statistics.bytesFromPeers += bytes
        let engines = owner.engines
        engines.acquire { [queue, trace] engine in
            let start = queue.now
            let name = "migrate \(self.statistics.name) → \(peer.statistics.name)"
            link.transfer(name, bytes: bytes, capBytesPerSecond: engines.bytesPerSecond) {
                trace?.span(
                    name, category: "migration", lane: owner.engineLane(engine), start: start, end: queue.now,
                    args: ["bytes": "\(bytes)", "cause": cause.rawValue, "route": link.route.name])
                engines.release(engine)
                done()
            }
        }
    }

    /// A kernel's remote accesses in one direction, as one stream over the link.
    func remote(bytes: UInt64, toDevice: Bool, done: @escaping () -> Void) {
        let start = queue.now
        (toDevice ? self.toDevice : toHost).transfer(bytes: bytes, span: "remote \(toDevice ? "reads" : "writes") of \(statistics.name)") { [trace] end in
            trace?.span(
                toDevice ? "remote reads" : "remote writes", category: "remote", lane: self.remoteLane(toDevice: toDevice),
                start: start, end: end, args: ["bytes": "\(bytes)"])
            done()
        }
    }

    var linkStatistics: LinkStatistics {
        LinkStatistics(name: toHost.name, endpoints: "host↔\(statistics.name)", hostToDevice: toDevice.carried, deviceToHost: toHost.carried)
    }
}
