import SVMPluginKit

/// The peer path from one device to another's memory in a ``SimulatedTimeline``: one
/// channel in that direction (the reverse direction is a link of its own), crossed by the
/// migrations that go directly between the two devices.
///
/// The path is taken as one channel with its narrowest hop's bandwidth and its hops'
/// latency together, so two paths that share a hop (two peers behind one switch) do not
/// yet slow each other down.
final class SimulatedPeerLink {
    let from: UInt64
    let to: UInt64
    let path: PeerPath
    let channel: LinkChannel
    /// The trace process of this path: its migrations and in-place accesses as spans.
    let lane: TraceRecorder.Lane
    private let trace: TraceRecorder?
    private let queue: EventQueue

    init(
        from: UInt64, to: UInt64, names: (String, String), path: PeerPath, halfEfficiencyBytes: UInt64, queue: EventQueue,
        trace: TraceRecorder?, process: Int
    ) {
        self.from = from
        self.to = to
        self.path = path
        self.queue = queue
        self.trace = trace
        lane = TraceRecorder.Lane(process: process, thread: 1)
        trace?.name(lane, process: "peer \(names.0)→\(names.1) (\(path.linkProtocol.rawValue))", thread: "transfers")
        channel = LinkChannel(
            parameters: LinkParameters(
                name: path.hops.map(\.name).joined(separator: " + "), latencyNanoseconds: path.latencyNanoseconds,
                bytesPerSecond: Double(path.bandwidthBytesPerSecond), halfEfficiencyBytes: halfEfficiencyBytes),
            queue: queue)
    }

    /// Carries `bytes` over the path (capped at `capBytesPerSecond`, a copy engine), traced
    /// as `name` on the path's process; `done` at the arrival.
    func transfer(_ name: String, bytes: UInt64, capBytesPerSecond: Double? = nil, done: @escaping () -> Void) {
        let start = queue.now
        channel.transfer(bytes: bytes, capBytesPerSecond: capBytesPerSecond) { [trace, lane] end in
            trace?.span(name, category: "peer", lane: lane, start: start, end: end, args: ["bytes": "\(bytes)"])
            done()
        }
    }

    func statistics(names: [UInt64: String]) -> PeerLinkStatistics {
        PeerLinkStatistics(
            from: names[from] ?? "\(from)", to: names[to] ?? "\(to)", linkProtocol: path.linkProtocol,
            route: channel.parameters.name,
            carried: .init(bytes: channel.bytesMoved, transfers: channel.transfersDone, busyNanoseconds: channel.busyNanoseconds))
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
