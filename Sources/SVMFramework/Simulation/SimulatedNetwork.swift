/// The links of a simulated machine as one network in simulated time: every link direction
/// is a channel, and every transfer crosses a route of channels (a host link, or the hops of
/// a peer path). The transfers in flight share the channels max-min fairly across the whole
/// network (progressive filling): the most constrained channel's transfers get equal shares
/// of it, or less when their own cap (a copy engine) is lower, and what they leave on the
/// other channels of their routes goes to the others there. A transfer crossing a busy
/// switch uplink is slowed on its whole route; two transfers sharing no channel never slow
/// each other. With every route one channel long this is each channel's own max-min share.
///
/// A transfer of `s` bytes carries `s + halfEfficiencyBytes` bytes of work (see
/// ``LinkParameters``); when its work is done it arrives after its route's latencies. Each
/// change in the set of transfers re-divides the bandwidth and schedules the next completion.
///
/// Deterministic: channels and transfers are visited in the order they were added.
final class SimulatedNetwork {
    /// One direction of a link.
    final class Channel {
        let name: String
        /// Bytes per simulated nanosecond.
        let capacity: Double
        let latencyNanoseconds: UInt64
        /// Transfers in flight across it.
        fileprivate(set) var active = 0
        /// While the bandwidth is divided: what is left of the capacity, and how many of the
        /// transfers across it have no rate yet.
        fileprivate var room: Double = 0
        fileprivate var unfixed = 0
        /// Bytes and transfers completed, and time with at least one in flight.
        fileprivate(set) var bytesMoved: UInt64 = 0
        fileprivate(set) var transfersDone = 0
        fileprivate(set) var busyNanoseconds: UInt64 = 0

        fileprivate init(name: String, bytesPerSecond: Double, latencyNanoseconds: UInt64) {
            self.name = name
            capacity = bytesPerSecond / 1e9
            self.latencyNanoseconds = latencyNanoseconds
        }

        var statistics: LinkStatistics.Direction {
            LinkStatistics.Direction(bytes: bytesMoved, transfers: transfersDone, busyNanoseconds: busyNanoseconds)
        }
    }

    private struct Transfer {
        let id: UInt64
        let bytes: UInt64
        let route: [Channel]
        /// Bytes per nanosecond at most (its copy engine), or infinity.
        let cap: Double
        /// Work left, in bytes.
        var remaining: Double
        var rate: Double = 0
        let completion: (UInt64) -> Void
    }

    private let queue: EventQueue
    private let halfEfficiencyBytes: UInt64
    private(set) var channels: [Channel] = []
    private var transfers: [Transfer] = []
    private var nextID: UInt64 = 0
    private var lastUpdate: UInt64 = 0
    /// Makes a scheduled completion check stale once the set of transfers changed.
    private var generation: UInt64 = 0

    init(queue: EventQueue, halfEfficiencyBytes: UInt64) {
        self.queue = queue
        self.halfEfficiencyBytes = halfEfficiencyBytes
    }

    /// Adds a channel.
    func addChannel(name: String, bytesPerSecond: Double, latencyNanoseconds: UInt64) -> Channel {
        let channel = Channel(name: name, bytesPerSecond: bytesPerSecond, latencyNanoseconds: latencyNanoseconds)
        channels.append(channel)
        return channel
    }

    /// Starts a transfer of `bytes` across `route` now; `completion` runs at its arrival.
    /// - Parameter capBytesPerSecond: the transfer's own limit (its copy engine).
    func transfer(bytes: UInt64, route: [Channel], capBytesPerSecond: Double? = nil, completion: @escaping (UInt64) -> Void) {
        precondition(!route.isEmpty, "a transfer crosses at least one channel")
        settle()
        for channel in route { channel.active += 1 }
        transfers.append(Transfer(
            id: nextID, bytes: bytes, route: route, cap: capBytesPerSecond.map { $0 / 1e9 } ?? .infinity,
            remaining: Double(bytes) + Double(halfEfficiencyBytes), completion: completion))
        nextID += 1
        reschedule()
    }

    /// Brings every transfer's remaining work up to now, finishing those done.
    private func settle() {
        let now = queue.now
        let elapsed = now - lastUpdate
        for channel in channels where channel.active > 0 { channel.busyNanoseconds += elapsed }
        lastUpdate = now
        for index in transfers.indices { transfers[index].remaining -= transfers[index].rate * Double(elapsed) }
        // Checks run at whole nanoseconds rounded up: a finished transfer has no work left
        // (the tolerance absorbs floating-point rounding).
        let isDone = { (transfer: Transfer) in transfer.remaining <= 1e-6 }
        let done = transfers.filter(isDone)
        transfers.removeAll(where: isDone)
        for transfer in done {
            var latency: UInt64 = 0
            for channel in transfer.route {
                channel.active -= 1
                channel.bytesMoved += transfer.bytes
                channel.transfersDone += 1
                latency += channel.latencyNanoseconds
            }
            queue.schedule(after: latency) { [queue] in transfer.completion(queue.now) }
        }
    }

    /// Divides the bandwidth and schedules a check at the next completion.
    private func reschedule() {
        generation += 1
        guard !transfers.isEmpty else { return }
        divideBandwidth()
        var soonest = Double.infinity
        for transfer in transfers where transfer.rate > 0 { soonest = min(soonest, transfer.remaining / transfer.rate) }
        precondition(soonest.isFinite, "no transfer in flight moves (a channel without bandwidth)")
        let delay = UInt64(soonest.rounded(.up))
        let expected = generation
        queue.schedule(after: max(delay, 1)) { [weak self] in
            guard let self, self.generation == expected else { return }
            self.settle()
            self.reschedule()
        }
    }

    /// Progressive filling: raise every unfixed transfer's rate together until a channel is
    /// full (its transfers are fixed at their equal share of what is left on it) or a
    /// transfer reaches its cap (fixed there); repeat with the rest.
    private func divideBandwidth() {
        for channel in channels where channel.active > 0 {
            channel.room = channel.capacity
            channel.unfixed = channel.active
        }
        var unfixed = Array(transfers.indices)
        while !unfixed.isEmpty {
            // The tightest channel's fair share, in the order channels were added.
            var share = Double.infinity
            var bottleneck: Channel?
            for channel in channels where channel.unfixed > 0 && channel.room / Double(channel.unfixed) < share {
                share = channel.room / Double(channel.unfixed)
                bottleneck = channel
            }
            let tightestCap = unfixed.map { transfers[$0].cap }.min() ?? .infinity
            let rate = min(tightestCap, share)
            let fixesAtCap = tightestCap < share
            var stillUnfixed: [Int] = []
            for index in unfixed {
                let fixed = fixesAtCap ? transfers[index].cap == tightestCap : transfers[index].route.contains { $0 === bottleneck }
                guard fixed else {
                    stillUnfixed.append(index)
                    continue
                }
                transfers[index].rate = rate
                for channel in transfers[index].route {
                    channel.room = max(0, channel.room - rate)
                    channel.unfixed -= 1
                }
            }
            unfixed = stillUnfixed
        }
    }
}
