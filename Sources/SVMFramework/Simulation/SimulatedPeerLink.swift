import SVMPluginKit

/// The peer path from one device to another's memory in a ``SimulatedTimeline``, crossed by
/// the migrations that go directly between the two devices and by in-place accesses: one
/// direction of each of its hops, channels of the ``SimulatedNetwork`` shared with every
/// other path over the same hop in the same direction (two peers behind one switch share
/// the switch's link of the device they both read from).
final class SimulatedPeerLink {
    let from: UInt64
    let to: UInt64
    let path: PeerPath
    /// The hops' channels in the path's direction, in order, and the trace lane of each.
    let route: [SimulatedNetwork.Channel]
    private let lanes: [TraceRecorder.Lane]
    private let network: SimulatedNetwork
    private let trace: TraceRecorder?
    private let queue: EventQueue
    /// What the path carried: bytes and transfers completed, time with one in flight.
    private var active = 0
    private var busySince: UInt64 = 0
    private var carried = LinkStatistics.Direction()

    init(
        from: UInt64, to: UInt64, path: PeerPath, hops: [(channel: SimulatedNetwork.Channel, lane: TraceRecorder.Lane)],
        network: SimulatedNetwork, queue: EventQueue, trace: TraceRecorder?
    ) {
        self.from = from
        self.to = to
        self.path = path
        route = hops.map(\.channel)
        lanes = hops.map(\.lane)
        self.network = network
        self.queue = queue
        self.trace = trace
    }

    /// The links crossed, joined with " + ".
    var routeName: String { path.hops.map(\.name).joined(separator: " + ") }

    /// Carries `bytes` over the path (capped at `capBytesPerSecond`, a copy engine), traced
    /// as `name` on every hop it crosses; `done` at the arrival.
    func transfer(_ name: String, bytes: UInt64, capBytesPerSecond: Double? = nil, done: @escaping () -> Void) {
        let start = queue.now
        if active == 0 { busySince = start }
        active += 1
        network.transfer(bytes: bytes, route: route, capBytesPerSecond: capBytesPerSecond) { [self] end in
            active -= 1
            if active == 0 { carried.busyNanoseconds += end - busySince }
            carried.bytes += bytes
            carried.transfers += 1
            for lane in lanes { trace?.span(name, category: "peer", lane: lane, start: start, end: end, args: ["bytes": "\(bytes)"]) }
            done()
        }
    }

    func statistics(names: [UInt64: String]) -> PeerLinkStatistics {
        PeerLinkStatistics(
            from: names[from] ?? "\(from)", to: names[to] ?? "\(to)", linkProtocol: path.linkProtocol, route: routeName,
            carried: carried)
    }
}

/// What the peer path from one device to another carried in an experiment.
public struct PeerLinkStatistics: Sendable, Hashable, Codable {
    public var from: String
    public var to: String
    public var linkProtocol: LinkProtocol
    /// The links crossed, joined with " + ".
    public var route: String
    public var carried: LinkStatistics.Direction
}

/// What one direction of one link of the topology (a hop of peer paths) carried, all the
/// paths over it together.
public struct HopStatistics: Sendable, Hashable, Codable {
    /// The link's name, and the nodes the direction goes from and to.
    public var link: String
    public var from: String
    public var to: String
    public var bandwidthBytesPerSecond: UInt64
    public var carried: LinkStatistics.Direction
}
