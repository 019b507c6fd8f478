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
    /// What the running kernel's faults migrated and evicted (see ``ThrashingGuard``).
    let thrashing = ThrashingGuard()
    /// Kernels launched through ``run(_:)``: tells one kernel's fault batches from the next's.
    private let kernelsLaunched = Atomic<UInt64>(0)
    /// Cleared when the device answers `EOPNOTSUPP` to an allocation: nothing migrates here.
    private let devmemWorks: Atomic<Bool>
    /// Held for reading by every call the framework makes into the device from its own
    /// threads (the fault handler among them), for writing by ``markClosed()``: a device is
    /// never called after it was closed. `closed` is protected by it.
    private let lifetime = ReaderWriterLock()
    private var closed = false
    /// Waits until the address-space changes the program has made are handled (see
    /// ``CPUMirror/waitUntilEventsHandled()``).
    private let addressSpaceSettled: @Sendable () -> Void

    init(deviceID: UInt64, name: String, device: any OpenDevice, addressSpaceSettled: @escaping @Sendable () -> Void = {}) {
        self.deviceID = deviceID
        self.name = name
        self.device = device
        self.addressSpaceSettled = addressSpaceSettled
        let pagemap = try? device.pagemapInfo()
        self.pagemap = pagemap
        devmemWorks = Atomic((pagemap?.capacityBytes ?? 0) > 0)
    }

    /// Whether ranges can migrate into this device's memory.
    public var hasDeviceMemory: Bool { devmemWorks.load(ordering: .relaxed) }

    /// Runs a kernel on the device; its faults come back to the context on this thread.
    ///
    /// An `munmap`, `madvise` or `mremap` that returned before the launch is in effect for
    /// the kernel: the launch waits until the mirror has invalidated the device mappings it
    /// touched (the kernel would see stale device mappings otherwise).
    public func run(_ kernel: DeviceKernel) throws -> KernelResult {
        addressSpaceSettled()
        kernelsLaunched.add(1, ordering: .relaxed)
        return try device.runKernel(kernel)
    }

    /// Kernels launched so far: the number of the running (or last) one, 0 before any.
    var kernelNumber: UInt64 { kernelsLaunched.load(ordering: .relaxed) }

    /// Device memory in use now, as the plugin reports it.
    public var usedDeviceMemory: UInt64 { (try? device.pagemapInfo().usedBytes) ?? 0 }

    /// Runs `body` with the device if it is still open; `nil` after ``markClosed()``.
    func ifOpen<T>(_ body: (any OpenDevice) throws -> T) rethrows -> T? {
        try lifetime.withReadLock { closed ? nil : try body(device) }
    }

    /// Waits for calls in flight, then makes every later ``ifOpen(_:)`` a no-op.
    func markClosed() {
        lifetime.withWriteLock { closed = true }
    }

    // MARK: SVMDeviceMapper

    public func zap(_ interval: AddressInterval) {
        // A device that cannot zap cannot have bound anything either.
        _ = ifOpen { try? $0.zap(address: interval.start, size: interval.size) }
    }

    // MARK: device memory

    /// Allocates `size` bytes, calling `evict` to make room while the device is full;
    /// `nil` when nothing more can be evicted or the device has no memory for SVM.
    func allocate(size: UInt64, evict: () -> Bool) -> DeviceAllocation? {
        guard hasDeviceMemory else { return nil }
        while true {
            do {
                guard let offset = try ifOpen({ try $0.allocateDeviceMemory(size: size) }) else { return nil }
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
        _ = ifOpen { $0.freeDeviceMemory(offset: allocation.offset, size: allocation.size) }
    }

    /// Copies host memory into device memory; false if that failed or the device is closed.
    func copyIn(_ allocation: DeviceAllocation, from source: UInt64) -> Bool {
        (try? ifOpen { try $0.copyToDeviceMemory(offset: allocation.offset, from: pointer(source)!, size: allocation.size) }) != nil
    }

    /// Copies device memory into host memory; false if that failed or the device is closed.
    func copyOut(_ allocation: DeviceAllocation, to destination: UInt64) -> Bool {
        (try? ifOpen { try $0.copyFromDeviceMemory(offset: allocation.offset, to: pointer(destination)!, size: allocation.size) }) != nil
    }
}
