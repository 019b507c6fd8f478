import SVMFramework
import SVMPluginKit
import Synchronization

/// A device fault handler for device tests: a stand-in for the SVM core that services a
/// fault by binding the faulting 4 KiB page of plain host memory as a system piece.
///
/// It serves only the ranges it was told to (``serve(_:writable:)``) and answers like the
/// core would otherwise: `badAddress` outside them, `accessDenied` for a write to a
/// read-only range and for an atomic (a core would migrate the page to the device first;
/// this one has no device memory to offer). Every fault is recorded.
public final class SystemMemoryFaultHandler: DeviceFaultHandler {
    public struct Fault: Hashable, Sendable {
        public let hostDevice: UInt64
        public let address: UInt64
        public let access: DeviceAccess

        public init(hostDevice: UInt64, address: UInt64, access: DeviceAccess) {
            self.hostDevice = hostDevice
            self.address = address
            self.access = access
        }
    }

    private struct Region {
        var range: Range<UInt64>
        var writable: Bool
    }

    private struct State {
        var regions: [Region] = []
        var faults: [Fault] = []
    }

    /// The device whose faults this serves.
    public let device: any OpenDevice
    /// Held while a fault is serviced, so tests see a consistent record.
    private let state = Locked(State())

    public init(device: any OpenDevice) { self.device = device }

    /// Serves faults in `range` from now on; pages are bound writable or read-only.
    public func serve(_ range: Range<UInt64>, writable: Bool) {
        state.withLock { $0.regions.append(Region(range: range, writable: writable)) }
    }

    /// Stops serving `range` (as the core does for memory the CPU unmapped) without zapping
    /// what is bound there.
    public func withdraw(_ range: Range<UInt64>) {
        state.withLock { state in
            var kept: [Region] = []
            for region in state.regions {
                if region.range.lowerBound < range.lowerBound {
                    kept.append(Region(range: region.range.lowerBound ..< min(region.range.upperBound, range.lowerBound), writable: region.writable))
                }
                if region.range.upperBound > range.upperBound {
                    kept.append(Region(range: max(region.range.lowerBound, range.upperBound) ..< region.range.upperBound, writable: region.writable))
                }
            }
            state.regions = kept
        }
    }

    /// The faults seen so far, in order.
    public var faults: [Fault] { state.withLock { $0.faults } }

    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
        try state.withLock { (state) throws in
            state.faults.append(Fault(hostDevice: hostDevice, address: address, access: access))
            guard let region = state.regions.first(where: { $0.range.contains(address) }) else {
                throw PluginErrno.badAddress
            }
            if access.contains(.atomic) || (access.contains(.write) && !region.writable) {
                throw PluginErrno.accessDenied
            }
            let page = address & ~UInt64(MappedBuffer.pageSize - 1)
            // The page may be bound already, read-only: rebind it as the region allows.
            try device.zap(address: page, size: UInt64(MappedBuffer.pageSize))
            try device.bind(
                address: page, size: UInt64(MappedBuffer.pageSize),
                pieces: [BindPiece(address: page, linkProtocol: .system, order: 0)],
                access: region.writable ? [.writable] : [])
        }
    }
}
