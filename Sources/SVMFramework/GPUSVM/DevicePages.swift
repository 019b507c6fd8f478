import SVMPluginKit
import Synchronization

/// The pages of one range as one device sees them (`drm_gpusvm_pages`): their addresses,
/// the notifier sequence number they were collected under, and flags. A range holds one per
/// device that faulted on it.
public final class DevicePages: Sendable {
    public let deviceID: UInt64
    public let flags = AtomicFlags<DevicePagesFlags>()
    /// The addresses and the sequence number they are valid for; protected by this mutex and
    /// replaced whole under the notifier lock.
    private let state = Locked<(addresses: [PagemapAddress], sequence: UInt64)>(([], 0))

    /// Serializes commits of these pages: two faults of one device on one range commit
    /// under the notifier lock held for reading, so they would otherwise bind twice.
    private let commits = Lock()

    public init(deviceID: UInt64) { self.deviceID = deviceID }

    /// Runs a page-table commit (zap what is there, bind, ``publishLocked(_:sequence:hasDevmem:under:)``)
    /// alone among the commits of these pages. The caller holds the notifier lock for reading.
    public func withCommit<T>(_ body: () throws -> T) rethrows -> T {
        try commits.withLock { try body() }
    }

    /// Records freshly collected addresses; the caller holds `lock` (the notifier lock) for
    /// reading and has checked that `sequence` is current.
    public func publishLocked(_ addresses: [PagemapAddress], sequence: UInt64, hasDevmem: Bool, under lock: NotifierLock) {
        lock.assertHeld(.read)
        state.withLock { $0 = (addresses, sequence) }
        flags.store(hasDevmem ? [.hasDMAMapping, .hasDevmemPages] : [.hasDMAMapping])
    }

    /// Drops the mapping (unmap-pages); the caller holds `lock` (the notifier lock) for
    /// writing.
    public func invalidateLocked(unmapped: Bool = false, under lock: NotifierLock) {
        lock.assertHeld(.write)
        state.withLock { $0 = ([], $0.sequence) }
        flags.store(unmapped ? [.unmapped] : [])
    }

    /// The addresses, if they are valid for `sequence`.
    public func addresses(validFor sequence: UInt64) -> [PagemapAddress]? {
        state.withLock { current in
            flags.load().contains(.hasDMAMapping) && current.sequence == sequence ? current.addresses : nil
        }
    }

    public var isMapped: Bool { flags.load().contains(.hasDMAMapping) }
}
