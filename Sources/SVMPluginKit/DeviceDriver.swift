/// The device ops of the plugin ABI (`struct svm_device_ops`), in Swift.
///
/// A Swift device plugin implements it and the kit exports it as C; the host wraps a loaded
/// C table back into this protocol, so both sides program against the same requirements.
public protocol DeviceDriver: AnyObject, Sendable {
    /// [required] How many devices the plugin exposes. Host thread, no host lock.
    func deviceCount() throws -> Int

    /// [required] Describes device `index` (< `deviceCount()`); throws
    /// `PluginErrno.noDevice` for a bad index. Host thread, no host lock.
    func deviceInfo(at index: Int) throws -> DeviceInfo

    /// [required] Opens device `index`. `hostDevice` is the host's handle for the device, to
    /// pass to `HostServices.reportDeviceFault`. Host thread, no host lock.
    func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice
}

/// An open device and its pagemap (`device_ctx` with `struct svm_pagemap_ops`).
public protocol OpenDevice: AnyObject, Sendable {
    /// [required] The device memory this device provides. Host thread, no host lock.
    func pagemapInfo() throws -> PagemapInfo

    /// [required] Releases the device; no op is called on it afterwards. Host thread.
    func close()

    // MARK: ABI 1.1, optional: device memory (`drm_pagemap_devmem`). Any host thread, no
    // host lock. The host memory copied from or to is host staging memory, never SVM.

    /// Allocates `size` bytes (a power of two, at least the min page size), naturally
    /// aligned, and returns the offset. Throws `.outOfMemory` when full, `.invalidArgument`
    /// for a bad size, `.notSupported` when the device has no memory for SVM.
    func allocateDeviceMemory(size: UInt64) throws -> UInt64
    /// Frees what ``allocateDeviceMemory(size:)`` returned.
    func freeDeviceMemory(offset: UInt64, size: UInt64)
    /// Copies host memory into device memory (migrate to device).
    func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws
    /// Copies device memory into host memory (migrate to RAM).
    func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws

    // MARK: ABI 1.1, optional: page table and kernels.

    /// Maps `[address, address + size)` to `pieces` in order. Called under the host's
    /// notifier lock held for reading: must not call host services or wait for a kernel.
    func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws
    /// ``bind(address:size:pieces:access:)`` of one piece (what a fault binds). The default
    /// makes the array of one; the host's loaded devices implement it without one.
    func bind(address: UInt64, size: UInt64, piece: BindPiece, access: BindAccess) throws
    /// Unmaps `[address, address + size)` and flushes TLBs; waits for accesses in flight.
    /// Called under the host's notifier lock held for writing, from any host thread.
    func zap(address: UInt64, size: UInt64) throws
    /// Runs `kernel` to completion on the calling thread, reporting faults to the host.
    func runKernel(_ kernel: DeviceKernel) throws -> KernelResult
}

/// Defaults for the optional ops: a device without them is described but not used for SVM.
/// A Swift plugin that implements a group declares it in ``DevicePlugin/implementedOps``,
/// or the exporter leaves the group's C ops NULL.
extension OpenDevice {
    public func allocateDeviceMemory(size: UInt64) throws -> UInt64 { throw PluginErrno.notSupported }
    public func freeDeviceMemory(offset: UInt64, size: UInt64) {}
    public func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws {
        throw PluginErrno.notSupported
    }
    public func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws {
        throw PluginErrno.notSupported
    }
    public func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws {
        throw PluginErrno.notSupported
    }
    public func bind(address: UInt64, size: UInt64, piece: BindPiece, access: BindAccess) throws {
        try bind(address: address, size: size, pieces: [piece], access: access)
    }
    public func zap(address: UInt64, size: UInt64) throws { throw PluginErrno.notSupported }
    public func runKernel(_ kernel: DeviceKernel) throws -> KernelResult { throw PluginErrno.notSupported }
}
