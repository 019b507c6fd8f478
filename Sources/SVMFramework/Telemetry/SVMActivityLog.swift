import SVMPluginKit
import Synchronization

/// What the SVM layer did that costs simulated time, in the order it happened: the input
/// of an experiment's timing model (``SimulatedTimeline``). Off unless ``enable()`` was
/// called; then each entry costs a lock.
///
/// The order is deterministic when one thread drives the devices and the CPU (an
/// experiment's rule): device faults are serviced on the kernel's thread, CPU faults on
/// the mirror's handler thread while the faulting thread waits.
public final class SVMActivityLog: Sendable {
    public enum Direction: String, Sendable, Hashable, Codable {
        case toDevice, toSystem
    }

    /// A place data lives, by id: system memory or one device's memory.
    public enum Location: Sendable, Hashable, CustomStringConvertible {
        case system
        case device(UInt64)

        public var description: String {
            switch self {
            case .system: "system memory"
            case .device(let id): "device \(id)"
            }
        }
    }

    /// The way a migration between two devices took.
    public enum Route: Sendable, Hashable {
        /// Over the links to the host: out of the source into system memory, then into the
        /// target (and every migration from or to system memory).
        case throughSystem
        /// Directly over the peer path between the two devices.
        case peer(PeerPath)
    }

    /// Why data moved.
    public enum Cause: String, Sendable, Hashable, Codable {
        case deviceFault, cpuFault, eviction, release, addressSpaceChange, fork
    }

    /// Why data was lost.
    public enum LossCause: String, Sendable, Hashable, Codable {
        /// The device reset and its memory's contents with it.
        case deviceReset
        /// Copies back to system memory kept failing (or the device was gone).
        case copyFailure
    }

    public enum Entry: Sendable, Hashable {
        /// A device fault the context was asked to service (`batch` 0: not batched).
        case deviceFault(deviceID: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64)
        /// A range's data moved from one location to another: between system memory and a
        /// device's memory, or from one device to another, directly over their peer path or
        /// through system memory (``legs`` says which host links it crossed).
        case migration(from: Location, to: Location, bytes: UInt64, cause: Cause, route: Route = .throughSystem)
        /// Device `deviceID` mapped `bytes` of device `owner`'s memory in place, over their
        /// peer path (no data moved; its kernels' peer accesses cross the path).
        case peerMapping(deviceID: UInt64, owner: UInt64, bytes: UInt64)
        /// A binding of device `deviceID` was DMA-mapped (see ``DMAMapping``): its IOVA
        /// allocation, links and sync, or its pages mapped one by one.
        case dmaMapping(deviceID: UInt64, work: DMAWork)
        /// A device reported a reset.
        case deviceReset(deviceID: UInt64)
        /// A range's data, held only in a device's memory, was lost.
        case dataLost(deviceID: UInt64, bytes: UInt64, cause: LossCause)
    }

    private let enabled = Atomic<Bool>(false)
    private let entries = Locked<[Entry]>([])

    public init() {}

    public func enable() { enabled.store(true, ordering: .releasing) }

    func record(_ entry: @autoclosure () -> Entry) {
        guard enabled.load(ordering: .relaxed) else { return }
        let entry = entry()
        entries.withLock { $0.append(entry) }
    }

    /// Takes every entry recorded so far, oldest first.
    public func drain() -> [Entry] {
        entries.withLock { entries in defer { entries.removeAll() }; return entries }
    }
}

extension SVMActivityLog.Entry {
    /// The transfers a migration made over host links, in order: one per device whose link
    /// it crossed (device to device through system memory is two: out of the source, into
    /// the target; directly over a peer path, none).
    public var legs: [(deviceID: UInt64, direction: SVMActivityLog.Direction)] {
        guard case .migration(let from, let to, _, _, let route) = self, route == .throughSystem else { return [] }
        var legs: [(deviceID: UInt64, direction: SVMActivityLog.Direction)] = []
        if case .device(let source) = from { legs.append((source, .toSystem)) }
        if case .device(let target) = to { legs.append((target, .toDevice)) }
        return legs
    }
}

