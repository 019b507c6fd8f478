/// A way across the ``SimulatedNetwork`` that transfers take: a device's link to the host
/// (one channel of its own, or the links of the topology up to the root complex) or a peer
/// path, with what it carried. Its channels are shared with every other route over the
/// same link direction.
final class SimulatedRoute {
    /// The links crossed, joined with " + ".
    let name: String
    let channels: [SimulatedNetwork.Channel]
    /// The trace lane of each channel that has one (the topology's links), for a span per
    /// transfer on every link it crosses.
    private let lanes: [TraceRecorder.Lane]
    private let network: SimulatedNetwork
    private let trace: TraceRecorder?
    private let queue: EventQueue
    private let latency: UInt64
    /// Transfers whose work is in flight, and since when one has been.
    private var active = 0
    private var busySince: UInt64 = 0
    /// Bytes and transfers completed, and time with at least one transfer's work in flight.
    private(set) var carried = LinkStatistics.Direction()

    init(name: String, channels: [SimulatedNetwork.Channel], lanes: [TraceRecorder.Lane] = [], network: SimulatedNetwork,
         queue: EventQueue, trace: TraceRecorder? = nil) {
        precondition(!channels.isEmpty, "a route crosses at least one channel")
        self.name = name
        self.channels = channels
        self.lanes = lanes
        self.network = network
        self.queue = queue
        self.trace = trace
        latency = channels.reduce(0) { $0 + $1.latencyNanoseconds }
    }

    /// A route over one new channel of `link`'s bandwidth and latency.
    convenience init(_ link: LinkParameters, network: SimulatedNetwork, queue: EventQueue) {
        let channel = network.addChannel(name: link.name, bytesPerSecond: link.bytesPerSecond, latencyNanoseconds: link.latencyNanoseconds)
        self.init(name: link.name, channels: [channel], network: network, queue: queue)
    }

    /// Carries `bytes` (capped at `capBytesPerSecond`, a copy engine); `completion` at the
    /// arrival, with its time. `span` names the transfer on the links' trace lanes, in
    /// `category`.
    func transfer(
        bytes: UInt64, capBytesPerSecond: Double? = nil, span: String? = nil, category: String = "link",
        completion: @escaping (UInt64) -> Void
    ) {
        let start = queue.now
        if active == 0 { busySince = start }
        active += 1
        network.transfer(bytes: bytes, route: channels, capBytesPerSecond: capBytesPerSecond) { [self] end in
            active -= 1
            // The work ended a route's latency before the arrival.
            if active == 0 { carried.busyNanoseconds += max(end - latency, busySince) - busySince }
            carried.bytes += bytes
            carried.transfers += 1
            if let span {
                for lane in lanes { trace?.span(span, category: category, lane: lane, start: start, end: end, args: ["bytes": "\(bytes)"]) }
            }
            completion(end)
        }
    }
}
