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
    /// The hops in the path's direction.
    let route: SimulatedRoute

    init(from: UInt64, to: UInt64, path: PeerPath, route: SimulatedRoute) {
        self.from = from
        self.to = to
        self.path = path
        self.route = route
    }

    /// Carries `bytes` over the path (capped at `capBytesPerSecond`, a copy engine), traced
    /// as `name` on every hop it crosses; `done` at the arrival.
    func transfer(_ name: String, bytes: UInt64, capBytesPerSecond: Double? = nil, done: @escaping () -> Void) {
        route.transfer(bytes: bytes, capBytesPerSecond: capBytesPerSecond, span: name, category: "peer") { _ in done() }
    }

    func statistics(names: [UInt64: String]) -> PeerLinkStatistics {
        PeerLinkStatistics(
            from: names[from] ?? "\(from)", to: names[to] ?? "\(to)", linkProtocol: path.linkProtocol, route: route.name,
            carried: route.carried)
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

/// What one direction of one link of the topology carried, all the routes over it together
/// (peer paths, and host links that go through the topology).
public struct HopStatistics: Sendable, Hashable, Codable {
    /// The link's name, and the nodes the direction goes from and to.
    public var link: String
    public var from: String
    public var to: String
    public var bandwidthBytesPerSecond: UInt64
    public var carried: LinkStatistics.Direction
}
