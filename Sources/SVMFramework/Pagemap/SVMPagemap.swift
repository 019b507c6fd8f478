import SVMPluginKit
import Synchronization

/// One device's memory provider (the kernel's `drm_pagemap`): the allocator view of the
/// plugin's device memory, the ranges resident in it (least recently used first, for
/// eviction), and how data gets in and out — by moving pages, when the device memory is host
/// memory of this process registered with the mirror (zero-copy), else by copying through
/// the plugin's copy ops.
///
/// Owned by its ``SVMDevice``; every ``DeviceAllocation`` points back at it, so the owner of a
/// block is never searched for.
///
/// ## Zero-copy
/// A plugin declares its device memory host memory (ABI 1.4 `host_base`/`host_size`). The
/// context checks the claim (one private anonymous read-write mapping of this process, page
/// aligned, as large as the capacity) and registers it with the mirror's userfaultfd once;
/// from then on ``hostMemory`` is set and migrations move pages with `UFFDIO_MOVE` into and
/// out of it. The pagemap keeps the ABI's promises with the migrator: a live allocation reads
/// as its data or as zeros at every address (holes of the data stay holes; registered for
/// moves only, the memory raises no userfault, and the device's first touch of a hole is the
/// kernel's own zero-filling fault), and a freed one holds no page. Where the claim fails or registration does not work, the copy path is
/// used and ``zeroCopyUnavailableReason`` says why.
public final class SVMPagemap: Sendable {
    /// The device whose memory this is.
    public let deviceID: UInt64
    /// What the plugin reported at open (`nil`: it could not say; nothing migrates here).
    public let info: PagemapInfo?
    /// The device memory as host memory registered with the mirror: set once at init, for
    /// zero-copy migration; `nil` on the copy path.
    let hostMemory: AddressInterval?
    /// Why a plugin's host memory is not used, when it declared some.
    public let zeroCopyUnavailableReason: String?
    /// The ranges resident here, for eviction.
    let residents = DeviceMemoryLRU()
    /// The plugin's device; memory calls go through ``lifetime``.
    private let device: any OpenDevice
    private let lifetime: DeviceLifetime
    /// Cleared when the device answers `EOPNOTSUPP` to an allocation: nothing migrates here.
    private let devmemWorks: Atomic<Bool>

    init(deviceID: UInt64, device: any OpenDevice, lifetime: DeviceLifetime, info: PagemapInfo?,
         hostMemory: AddressInterval?, zeroCopyUnavailableReason: String?) {
        self.deviceID = deviceID
        self.device = device
        self.lifetime = lifetime
        self.info = info
        self.hostMemory = hostMemory
        self.zeroCopyUnavailableReason = zeroCopyUnavailableReason
        devmemWorks = Atomic((info?.capacityBytes ?? 0) > 0)
    }

    /// Whether ranges can migrate into this memory.
    public var hasDeviceMemory: Bool { devmemWorks.load(ordering: .relaxed) }

    /// Whether migrations move pages instead of copying them.
    public var isZeroCopy: Bool { hostMemory != nil }

    /// Device memory in use now, as the plugin reports it.
    public var usedBytes: UInt64 { (try? lifetime.ifOpen { try device.pagemapInfo().usedBytes }) ?? 0 }

    /// The paths from this device to the memory of the devices it has a peer path to, by
    /// device id (set by the context from its ``DeviceTopology``): a migration into one of
    /// their memories goes directly, not through system memory. Behind its own lock, a leaf.
    private let peers = Locked<[UInt64: PeerPath]>([:])

    /// The path from this device to device `deviceID`'s memory, `nil` when there is none.
    public func peerPath(to deviceID: UInt64) -> PeerPath? { peers.withLock { $0[deviceID] } }

    /// Sets or clears (`nil`) the path to device `deviceID`'s memory.
    func setPeerPath(_ path: PeerPath?, to deviceID: UInt64) { peers.withLock { $0[deviceID] = path } }

    /// The address device `importer` uses for `allocation`, a block of this memory, tagged
    /// with its protocol (the kernel's `device_map`): this device's own memory as local
    /// device memory; a peer's over `path`, PCIe peer-to-peer (through this device's BAR,
    /// which the importer's IOMMU maps: see `DMAMapping`) or fabric. The address is the
    /// block's offset in this memory either way, as the ABI's bind pieces name it (a plugin
    /// resolves a peer's offset through the piece's owner). `nil`: the importer is another
    /// device without a path here.
    func deviceMap(_ allocation: DeviceAllocation, for importer: SVMPagemap) -> PagemapAddress? {
        precondition(allocation.pagemap === self, "a block of another pagemap")
        let order = UInt8((allocation.size / 4096).trailingZeroBitCount)
        if importer === self { return PagemapAddress(address: allocation.offset, linkProtocol: .localVRAM, order: order) }
        guard let path = importer.peerPath(to: deviceID) else { return nil }
        return PagemapAddress(address: allocation.offset, linkProtocol: path.linkProtocol, order: order)
    }

    /// Set from ``SVMContext/handleDeviceResetBegin(hostDevice:)`` until the reset is handled:
    /// the memory is being wiped, so no device may map it and faults on it are refused.
    let resetting = Atomic<Bool>(false)

    /// Whether the device is resetting its memory (see ``resetting``).
    public var isResetting: Bool { resetting.load(ordering: .acquiring) }

    /// Allocations that failed for good (out of memory with nothing left to evict, or an
    /// error), for the message of a device fault that keeps failing.
    let failedAllocations = Atomic<Int>(0)

    /// Allocates `size` bytes, calling `evict` to make room while the memory is full;
    /// `nil` when nothing more can be evicted or the device has no memory for SVM.
    func allocate(size: UInt64, evict: () -> Bool) -> DeviceAllocation? {
        guard hasDeviceMemory else { return nil }
        while true {
            do {
                guard let offset = try lifetime.ifOpen({ try device.allocateDeviceMemory(size: size) }) else { return nil }
                return DeviceAllocation(pagemap: self, offset: offset, size: size)
            } catch let error as PluginErrno where error == .outOfMemory {
                guard evict() else {
                    failedAllocations.add(1, ordering: .relaxed)
                    return nil
                }
            } catch let error as PluginErrno where error == .notSupported {
                devmemWorks.store(false, ordering: .relaxed)
                return nil
            } catch {
                failedAllocations.add(1, ordering: .relaxed)
                return nil
            }
        }
    }

    /// Gives the block back to the plugin. With zero-copy, the caller has emptied it first.
    func free(_ allocation: DeviceAllocation) {
        _ = lifetime.ifOpen { device.freeDeviceMemory(offset: allocation.offset, size: allocation.size) }
    }

    /// Copies host memory into device memory; false if that failed or the device is closed.
    func copyIn(_ allocation: DeviceAllocation, from source: UInt64) -> Bool {
        (try? lifetime.ifOpen { try device.copyToDeviceMemory(offset: allocation.offset, from: pointer(source)!, size: allocation.size) }) != nil
    }

    /// Copies device memory into host memory; false if that failed or the device is closed.
    func copyOut(_ allocation: DeviceAllocation, to destination: UInt64) -> Bool {
        (try? lifetime.ifOpen { try device.copyFromDeviceMemory(offset: allocation.offset, to: pointer(destination)!, size: allocation.size) }) != nil
    }

    /// The host memory a plugin declared, if the claim holds: page-aligned, at least the
    /// capacity, and one private anonymous read-write mapping of this process. Otherwise
    /// the reason it is not used.
    static func checkHostMemory(_ info: PagemapInfo, cpu: ProcessAddressSpace) -> Result<AddressInterval, HostMemoryRefusal> {
        let (base, size) = (info.hostBase, info.hostSize)
        guard base % 4096 == 0, size % 4096 == 0, size <= UInt64.max - base else { return .failure(.init("host memory 0x\(String(base, radix: 16)) + \(size) is not page-aligned")) }
        guard size >= info.capacityBytes else { return .failure(.init("host memory of \(size) bytes is smaller than the capacity, \(info.capacityBytes)")) }
        guard let area = cpu.area(containing: base) else { return .failure(.init("nothing is mapped at host memory 0x\(String(base, radix: 16))")) }
        let mapping = CPUMapping(area)
        let interval = AddressInterval(start: base, end: base + size)
        guard mapping.interval.contains(interval) else { return .failure(.init("host memory 0x\(String(base, radix: 16)) + \(size) is not one mapping")) }
        guard mapping.canMigrate else { return .failure(.init("host memory 0x\(String(base, radix: 16)) is not private anonymous read-write memory")) }
        return .success(interval)
    }

    /// Why declared host memory is not used.
    struct HostMemoryRefusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
