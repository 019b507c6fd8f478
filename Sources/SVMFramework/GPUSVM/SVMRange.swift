import SVMPluginKit
import Synchronization

/// One chunk of the mirrored address space (`drm_gpusvm_range`): 2 MiB, 64 KiB or 4 KiB,
/// created on a device fault, with its MM-level flags and one ``DevicePages`` per device.
public final class SVMRange: Sendable {
    public let interval: AddressInterval
    public let flags: AtomicFlags<RangeFlags>
    /// Where the data lives: system memory, device memory, or a migration in flight.
    public let residency = RangeResidency()
    /// Device pages in device id order; protected by this mutex (inserted under the SVM
    /// lock). A list searched in order, not a dictionary: a range has the pages of one to a
    /// few devices, and a fault asks for them several times (a hash each time).
    private let pagesByDevice = Locked<[DevicePages]>([])
    /// The CPU mapping the last lookup found for the range, and what it is valid for (see
    /// `SVMSpace.lookUp(faultAddress:write:protection:)`); behind its own mutex, a leaf.
    private let mapping = Locked<(mapping: CPUMapping, key: MappingKey)?>(nil)

    /// What a cached CPU mapping is valid for: the space's count of address-space changes
    /// and the mirror's count of protection changes when it was found.
    struct MappingKey: Hashable {
        let addressSpace: UInt64
        let protection: UInt64
    }

    func cachedMapping(for key: MappingKey) -> CPUMapping? {
        mapping.withLock { $0?.key == key ? $0?.mapping : nil }
    }

    func cache(_ found: CPUMapping, for key: MappingKey) {
        mapping.withLock { $0 = (found, key) }
    }

    public init(interval: AddressInterval, flags: RangeFlags = []) {
        self.interval = interval
        self.flags = AtomicFlags(flags)
    }

    /// The device pages of `deviceID`, created empty on first use.
    public func pages(for deviceID: UInt64) -> DevicePages {
        pagesByDevice.withLock { list in
            if let pages = list.first(where: { $0.deviceID == deviceID }) { return pages }
            let pages = DevicePages(deviceID: deviceID)
            list.insert(pages, at: list.firstIndex { $0.deviceID > deviceID } ?? list.endIndex)
            return pages
        }
    }

    /// The device pages of `deviceID` if that device ever faulted on the range.
    public func pages(ifExistFor deviceID: UInt64) -> DevicePages? {
        pagesByDevice.withLock { list in list.first { $0.deviceID == deviceID } }
    }

    /// Calls `body` with every device's pages that exist, in device id order, without
    /// building an array.
    public func forEachPages(_ body: (DevicePages) -> Void) {
        pagesByDevice.withLock { list in for pages in list { body(pages) } }
    }

    /// Every device's pages that exist, by device id order.
    public var allPages: [DevicePages] {
        pagesByDevice.withLock { $0 }
    }

    /// Whether any device still maps the range: the garbage collector must unmap those
    /// first (unmap-before-remove).
    public var isMappedByAnyDevice: Bool { pagesByDevice.withLock { $0.contains { $0.isMapped } } }
}
