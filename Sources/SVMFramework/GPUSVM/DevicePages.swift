import SVMPluginKit
import Synchronization

/// The pages of one range as one device sees them (`drm_gpusvm_pages`): their addresses,
/// the notifier sequence number they were collected under, and flags. A range holds one per
/// device that faulted on it.
public final class DevicePages: Sendable {
    public let deviceID: UInt64
    public let flags = AtomicFlags<DevicePagesFlags>()
    /// The addresses, the sequence number they are valid for, and the DMA mapping of the
    /// pages (system memory or a peer's memory over PCIe; `nil` for local device memory and
    /// fabric addresses); protected by this mutex and replaced whole under the notifier lock.
    private let state = Locked<(addresses: Addresses, sequence: UInt64, dma: DMAMapping?)>((.none, 0, nil))

    /// The addresses of a binding: a fault binds one piece, kept without an array (one
    /// allocated on every bind and freed on every invalidation otherwise).
    private enum Addresses {
        case none
        case one(PagemapAddress)
        case several([PagemapAddress])

        var array: [PagemapAddress] {
            switch self {
            case .none: []
            case .one(let address): [address]
            case .several(let addresses): addresses
            }
        }
    }

    /// Serializes commits of these pages: two faults of one device on one range commit
    /// under the notifier lock held for reading, so they would otherwise bind twice.
    private let commits = Lock()

    public init(deviceID: UInt64) { self.deviceID = deviceID }

    /// Runs a page-table commit (zap what is there, bind, ``publishLocked(_:sequence:hasDevmem:under:)``)
    /// alone among the commits of these pages. The caller holds the notifier lock for reading.
    public func withCommit<T>(_ body: () throws -> T) rethrows -> T {
        try commits.withLock { try body() }
    }

    /// Records freshly collected addresses and their DMA mapping (linked); the caller holds
    /// `lock` (the notifier lock) for reading, has checked that `sequence` is current, and
    /// runs inside ``withCommit(_:)``. Returns the mapping replaced, unlinked, for the caller
    /// to free once the lock is dropped.
    @discardableResult
    func publishLocked(_ addresses: [PagemapAddress], sequence: UInt64, hasDevmem: Bool, dma: DMAMapping?,
                       under lock: NotifierLock) -> DMAMapping? {
        lock.assertHeld(.read)
        return publish(.several(addresses), sequence: sequence, hasDevmem: hasDevmem, dma: dma)
    }

    /// `publishLocked` of one address (a fault's binding).
    @discardableResult
    func publishLocked(_ address: PagemapAddress, sequence: UInt64, hasDevmem: Bool, dma: DMAMapping?,
                       under lock: NotifierLock) -> DMAMapping? {
        lock.assertHeld(.read)
        return publish(.one(address), sequence: sequence, hasDevmem: hasDevmem, dma: dma)
    }

    private func publish(_ addresses: Addresses, sequence: UInt64, hasDevmem: Bool, dma: DMAMapping?) -> DMAMapping? {
        let replaced = state.withLock { state in
            defer { state = (addresses, sequence, dma) }
            return state.dma
        }
        replaced?.unlinkLocked()
        flags.store(hasDevmem ? [.hasDMAMapping, .hasDevmemPages] : [.hasDMAMapping])
        return replaced
    }

    /// Drops the mapping (unmap-pages), unlinking its DMA mapping; the caller holds `lock`
    /// (the notifier lock) for writing. Returns that DMA mapping, for the caller to free
    /// once the lock is dropped.
    @discardableResult
    func invalidateLocked(unmapped: Bool = false, under lock: NotifierLock) -> DMAMapping? {
        lock.assertHeld(.write)
        let dropped = state.withLock { state in
            defer { state = (.none, state.sequence, nil) }
            return state.dma
        }
        dropped?.unlinkLocked()
        flags.store(unmapped ? [.unmapped] : [])
        return dropped
    }

    /// Marks pages that are not mapped as unmapped (an unmap of their range); the caller
    /// holds `lock` (the notifier lock) for writing.
    func markUnmappedLocked(under lock: NotifierLock) {
        lock.assertHeld(.write)
        flags.insert(.unmapped)
    }

    /// The DMA mapping of the pages, if they are mapped through one.
    var dmaMapping: DMAMapping? { state.withLock { $0.dma } }

    /// The addresses, if they are valid for `sequence`.
    public func addresses(validFor sequence: UInt64) -> [PagemapAddress]? {
        state.withLock { current in
            flags.load().contains(.hasDMAMapping) && current.sequence == sequence ? current.addresses.array : nil
        }
    }

    public var isMapped: Bool { flags.load().contains(.hasDMAMapping) }
}
