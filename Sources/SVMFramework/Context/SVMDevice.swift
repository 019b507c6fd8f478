import SVMPluginKit
import Synchronization

/// A device opened into an SVM context: the plugin's open device, its id in the SVM space,
/// its pagemap (device memory) and the ranges resident there.
public final class SVMDevice: SVMDeviceMapper, @unchecked Sendable {
    public let deviceID: UInt64
    public let name: String
    /// The plugin's device; every call goes through the ABI.
    public let device: any OpenDevice
    public let pagemap: PagemapInfo?
    let residents = DeviceMemoryLRU()
    /// Cleared when the device answers `EOPNOTSUPP` to an allocation: nothing migrates here.
    private let devmemWorks: Atomic<Bool>

    init(deviceID: UInt64, name: String, device: any OpenDevice) {
        self.deviceID = deviceID
        self.name = name
        self.device = device
        let pagemap = try? device.pagemapInfo()
        self.pagemap = pagemap
        devmemWorks = Atomic((pagemap?.capacityBytes ?? 0) > 0)
    }

    /// Whether ranges can migrate into this device's memory.
    public var hasDeviceMemory: Bool { devmemWorks.load(ordering: .relaxed) }

    /// Runs a kernel on the device; its faults come back to the context on this thread.
    public func run(_ kernel: DeviceKernel) throws -> KernelResult {
        try device.runKernel(kernel)
    }

    /// Device memory in use now, as the plugin reports it.
    public var usedDeviceMemory: UInt64 { (try? device.pagemapInfo().usedBytes) ?? 0 }

    // MARK: SVMDeviceMapper

    public func zap(_ interval: AddressInterval) {
        // A device that cannot zap cannot have bound anything either.
        try? device.zap(address: interval.start, size: interval.size)
    }

    // MARK: device memory

    /// Allocates `size` bytes, calling `evict` to make room while the device is full;
    /// `nil` when nothing more can be evicted or the device has no memory for SVM.
    func allocate(size: UInt64, evict: () -> Bool) -> DeviceAllocation? {
        guard hasDeviceMemory else { return nil }
        while true {
            do {
                let offset = try device.allocateDeviceMemory(size: size)
                return DeviceAllocation(deviceID: deviceID, offset: offset, size: size)
            } catch let error as PluginErrno where error == .outOfMemory {
                guard evict() else { return nil }
            } catch let error as PluginErrno where error == .notSupported {
                devmemWorks.store(false, ordering: .relaxed)
                return nil
            } catch {
                return nil
            }
        }
    }

    func free(_ allocation: DeviceAllocation) {
        device.freeDeviceMemory(offset: allocation.offset, size: allocation.size)
    }
}
