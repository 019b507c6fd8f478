/// One direction of a link that transfers cross alone (a device's link to the host): a
/// channel of the ``SimulatedNetwork``, which divides its bandwidth among the transfers in
/// flight together with every other channel they cross.
final class LinkChannel {
    let parameters: LinkParameters
    let channel: SimulatedNetwork.Channel
    private let network: SimulatedNetwork

    init(parameters: LinkParameters, network: SimulatedNetwork) {
        self.parameters = parameters
        self.network = network
        channel = network.addChannel(
            name: parameters.name, bytesPerSecond: parameters.bytesPerSecond, latencyNanoseconds: parameters.latencyNanoseconds)
    }

    /// Starts a transfer of `bytes` now; `completion` runs at its arrival time.
    /// - Parameter capBytesPerSecond: the transfer's own limit (its copy engine).
    func transfer(bytes: UInt64, capBytesPerSecond: Double? = nil, completion: @escaping (UInt64) -> Void) {
        network.transfer(bytes: bytes, route: [channel], capBytesPerSecond: capBytesPerSecond, completion: completion)
    }

    var bytesMoved: UInt64 { channel.bytesMoved }
    var transfersDone: Int { channel.transfersDone }
    var busyNanoseconds: UInt64 { channel.busyNanoseconds }
}
