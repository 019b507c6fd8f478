import SVMPluginKit
import Synchronization

/// A device opened into an SVM context: the plugin's open device (its page table and
/// kernels), its id in the SVM space, and its pagemap (device memory, see ``SVMPagemap``).
public final class SVMDevice: SVMDeviceMapper, @unchecked Sendable {
    public let deviceID: UInt64
    public let name: String
    /// The plugin's device; every call goes through the ABI.
    public let device: any OpenDevice
    /// The device's memory and the ranges resident there.
    public let pagemap: SVMPagemap
    /// The device's I/O virtual address space, which its bindings of system memory and of
    /// peers' memory over PCIe are DMA-mapped through (see ``DMAMapping``).
    public let iova: IOVASpace
    /// What the running kernel's faults migrated and evicted (see ``ThrashingGuard``).
    let thrashing = ThrashingGuard()
    /// Kernels launched through ``run(_:)``: tells one kernel's fault batches from the next's.
    private let kernelsLaunched = Atomic<UInt64>(0)
    /// Why the device is out of service (see ``zap(_:)``); set once, never cleared.
    private let outOfService = Locked<String?>(nil)
    /// Whether `outOfService` is set: an atomic, set after it, so that every fault's check
    /// takes no lock and copies no string.
    private let isOutOfServiceFlag = Atomic<Bool>(false)
    /// See ``lastFaultFailure``.
    private let faultFailure = Locked<String?>(nil)
    /// Held by every call into the device from the framework's threads; see ``DeviceLifetime``.
    private let lifetime: DeviceLifetime
    /// Where failed zaps are counted (the context's).
    private let statistics: SVMStatistics
    /// Waits until the address-space changes the program has made are handled (see
    /// ``CPUMirror/waitUntilEventsHandled(deadline:)``).
    private let addressSpaceSettled: @Sendable () -> Void

    /// - Parameter hostMemory: given the pagemap the plugin reported, checks and registers
    ///   its host memory for zero-copy migration; `nil` when the plugin declares none.
    init(deviceID: UInt64, name: String, device: any OpenDevice,
         hostMemory: (PagemapInfo) -> Result<AddressInterval, SVMPagemap.HostMemoryRefusal>? = { _ in nil },
         statistics: SVMStatistics = SVMStatistics(),
         addressSpaceSettled: @escaping @Sendable () -> Void = {}) {
        self.deviceID = deviceID
        iova = IOVASpace(deviceID: deviceID)
        self.statistics = statistics
        self.name = name
        self.device = device
        self.addressSpaceSettled = addressSpaceSettled
        let lifetime = DeviceLifetime()
        self.lifetime = lifetime
        let info = try? device.pagemapInfo()
        var zeroCopy: AddressInterval?
        var refusal: String?
        if let info, info.isHostMemory {
            switch hostMemory(info) {
            case .success(let interval): zeroCopy = interval
            case .failure(let reason): refusal = reason.description
            case nil: break
            }
        }
        pagemap = SVMPagemap(
            deviceID: deviceID, device: device, lifetime: lifetime, info: info, hostMemory: zeroCopy,
            zeroCopyUnavailableReason: refusal)
    }

    /// Whether ranges can migrate into this device's memory.
    public var hasDeviceMemory: Bool { pagemap.hasDeviceMemory }

    /// Runs a kernel on the device; its faults come back to the context on this thread.
    ///
    /// An `munmap`, `madvise` or `mremap` that returned before the launch is in effect for
    /// the kernel: the launch waits until the mirror has invalidated the device mappings it
    /// touched (the kernel would see stale device mappings otherwise).
    public func run(_ kernel: DeviceKernel) throws -> KernelResult {
        try checkInService()
        addressSpaceSettled()
        kernelsLaunched.add(1, ordering: .relaxed)
        let result = try device.runKernel(kernel)
        // Taken out of service while it ran: what it did may have used a stale translation.
        try checkInService()
        return result
    }

    /// Kernels launched so far: the number of the running (or last) one, 0 before any.
    var kernelNumber: UInt64 { kernelsLaunched.load(ordering: .relaxed) }

    /// Device memory in use now, as the plugin reports it.
    public var usedDeviceMemory: UInt64 { pagemap.usedBytes }

    /// Runs `body` with the device if it is still open; `nil` after ``markClosed()``.
    func ifOpen<T>(_ body: (any OpenDevice) throws -> T) rethrows -> T? {
        try lifetime.ifOpen { try body(device) }
    }

    /// Waits for calls in flight, then makes every later ``ifOpen(_:)`` a no-op.
    func markClosed() {
        lifetime.markClosed()
    }

    // MARK: SVMDeviceMapper

    /// Takes the device's translations of `interval` away. A zap that fails (`EIO` is
    /// documented) is tried again; one that keeps failing leaves translations the host can
    /// no longer take back, so the device is taken out of service (``outOfServiceReason``):
    /// no kernel runs on it any more, the kernel running meanwhile is reported failed, and
    /// its faults are refused. Its memory's data stays reachable: migrations back use the
    /// copy ops, not the page table. A device without a page table never bound anything.
    public func zap(_ interval: AddressInterval) {
        _ = ifOpen { device in
            var failure: (any Error)?
            for _ in 0..<Self.zapAttempts {
                do {
                    try device.zap(address: interval.start, size: interval.size)
                    return
                } catch {
                    if error as? PluginErrno == .notSupported { return }
                    statistics.failedZaps.count()
                    failure = error
                }
            }
            takeOutOfService("its zap of \(interval) failed \(Self.zapAttempts) times (\(failure.map { "\($0)" } ?? "?")), so it may still map memory the host took away")
        }
    }

    /// Attempts of one zap before the device is taken out of service.
    public static let zapAttempts = 3

    /// Why the last device fault that gave up did (its timeout passed), for the message of
    /// the kernel it stopped; `nil` before any did.
    public var lastFaultFailure: String? { faultFailure.withLock { $0 } }

    func recordFaultFailure(_ reason: String) {
        faultFailure.withLock { $0 = reason }
    }

    /// Why the device no longer runs kernels, or `nil` while it does.
    public var outOfServiceReason: String? { isOutOfService ? outOfService.withLock { $0 } : nil }

    /// Whether the device no longer runs kernels (``outOfServiceReason`` is set).
    public var isOutOfService: Bool { isOutOfServiceFlag.load(ordering: .acquiring) }

    private func takeOutOfService(_ reason: String) {
        outOfService.withLock { current in if current == nil { current = reason } }
        isOutOfServiceFlag.store(true, ordering: .releasing)
    }

    /// Refuses the call when the device is out of service.
    func checkInService() throws {
        if let reason = outOfServiceReason { throw SVMDeviceOutOfService(device: name, reason: reason) }
    }
}
