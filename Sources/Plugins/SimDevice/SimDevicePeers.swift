import SVMPluginKit

/// The memories of the plugin's open devices, by the host's device id: what a device reaches
/// when the host binds it to a peer's memory (a piece of protocol `PCIE_P2P` or `FABRIC`
/// naming its owner). SimDevice reaches only its own devices: every device's memory is host
/// memory of this process, so a peer access is a plain copy from the owner's memory.
///
/// A memory is registered when its device opens and withdrawn when it closes; the host frees
/// a device's memory (and zaps every importer's mapping of it first) before it closes it.
final class SimDevicePeers: Sendable {
    /// Protected by its lock, a leaf: taken under a device's page-table lock.
    private let memories = Locked<[UInt64: SimDeviceMemory]>([:])

    func register(_ memory: SimDeviceMemory, hostDevice: UInt64) { memories.withLock { $0[hostDevice] = memory } }

    func withdraw(hostDevice: UInt64) { _ = memories.withLock { $0.removeValue(forKey: hostDevice) } }

    /// The memory of the open device `hostDevice`, if it is one of this plugin's.
    func memory(of hostDevice: UInt64) -> SimDeviceMemory? { memories.withLock { $0[hostDevice] } }
}
