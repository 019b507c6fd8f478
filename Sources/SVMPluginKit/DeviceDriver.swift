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
}
