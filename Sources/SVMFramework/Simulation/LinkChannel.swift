/// One direction of a link in simulated time. Transfers in flight share its bandwidth:
/// each gets an equal share, except one held below its share by its own cap (a copy
/// engine slower than the link), whose unused share goes to the others (max-min fairness,
/// how PCIe arbitration and DMA engines behave to a first approximation).
///
/// A transfer of `s` bytes carries `s + halfEfficiencyBytes` bytes of work (see
/// ``LinkParameters``); when its work is done it arrives `latency` later. Each change in
/// the set of transfers re-divides the bandwidth and schedules the next completion.
final class LinkChannel {
    let parameters: LinkParameters
    private let queue: EventQueue
    /// Bytes per simulated nanosecond.
    private let capacity: Double

    private struct Transfer {
        let id: UInt64
        let bytes: UInt64
        /// Bytes per nanosecond at most (its copy engine), or infinity.
        let cap: Double
        /// Work left, in bytes.
        var remaining: Double
        var rate: Double = 0
        let completion: (UInt64) -> Void
    }

    private var transfers: [Transfer] = []
    private var nextID: UInt64 = 0
    private var lastUpdate: UInt64 = 0
    /// Makes a scheduled completion check stale once the set of transfers changed.
    private var generation: UInt64 = 0

    /// Statistics: bytes and transfers completed, and time with at least one in flight.
    private(set) var bytesMoved: UInt64 = 0
    private(set) var transfersDone: Int = 0
    private(set) var busyNanoseconds: UInt64 = 0

    init(parameters: LinkParameters, queue: EventQueue) {
        self.parameters = parameters
        self.queue = queue
        capacity = parameters.bytesPerSecond / 1e9
    }

    /// Starts a transfer of `bytes` now; `completion` runs at its arrival time.
    /// - Parameter capBytesPerSecond: the transfer's own limit (its copy engine).
    func transfer(bytes: UInt64, capBytesPerSecond: Double? = nil, completion: @escaping (UInt64) -> Void) {
        settle()
        let work = Double(bytes) + Double(parameters.halfEfficiencyBytes)
        transfers.append(Transfer(
            id: nextID, bytes: bytes, cap: capBytesPerSecond.map { $0 / 1e9 } ?? .infinity, remaining: work,
            completion: completion))
        nextID += 1
        reschedule()
    }

    /// Brings every transfer's remaining work up to now, finishing those done.
    private func settle() {
        let now = queue.now
        let elapsed = Double(now - lastUpdate)
        if !transfers.isEmpty { busyNanoseconds += now - lastUpdate }
        lastUpdate = now
        for index in transfers.indices { transfers[index].remaining -= transfers[index].rate * elapsed }
        // Checks run at whole nanoseconds rounded up: a finished transfer has no work left
        // (the tolerance absorbs floating-point rounding).
        let isDone = { (transfer: Transfer) in transfer.remaining <= 1e-6 }
        let done = transfers.filter(isDone)
        transfers.removeAll(where: isDone)
        for transfer in done {
            bytesMoved += transfer.bytes
            transfersDone += 1
            queue.schedule(after: parameters.latencyNanoseconds) { [queue] in transfer.completion(queue.now) }
        }
    }

    /// Divides the bandwidth and schedules a check at the next completion.
    private func reschedule() {
        generation += 1
        guard !transfers.isEmpty else { return }
        divideBandwidth()
        var soonest = Double.infinity
        for transfer in transfers { soonest = min(soonest, transfer.remaining / transfer.rate) }
        let delay = UInt64(soonest.rounded(.up))
        let expected = generation
        queue.schedule(after: max(delay, 1)) { [weak self] in
            guard let self, self.generation == expected else { return }
            self.settle()
            self.reschedule()
        }
    }

    /// Max-min fair shares: the most limited transfers first, each taking its cap or an
    /// equal part of what is left.
    private func divideBandwidth() {
        let order = transfers.indices.sorted { (transfers[$0].cap, transfers[$0].id) < (transfers[$1].cap, transfers[$1].id) }
        var left = capacity
        var sharing = Double(transfers.count)
        for index in order {
            let rate = min(transfers[index].cap, left / sharing)
            transfers[index].rate = rate
            left -= rate
            sharing -= 1
        }
    }
}
