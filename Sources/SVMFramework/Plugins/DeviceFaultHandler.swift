import SVMPluginKit

/// Services the device faults plugins report through `report_device_fault`, and their
/// resets (`report_device_reset`).
///
/// Called on the reporting device's fault thread; the device waits for the answer. Return
/// normally to make the device replay the access; throw `PluginErrno.badAddress` for an
/// address that is not mapped, `.accessDenied` for a forbidden access.
public protocol DeviceFaultHandler: AnyObject, Sendable {
    func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws
    /// [optional] The same with the device's replayable-fault batch (counted from 1 per
    /// kernel; 0 when the device does not batch). By default the batch is ignored.
    func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws
    /// [optional] The device lost its memory's contents (ABI 1.3): whatever data lived only
    /// there is gone. By default nothing happens (a handler that never puts data in device
    /// memory has nothing to lose). Throw `PluginErrno.noDevice` for an unknown device.
    func handleDeviceReset(hostDevice: UInt64) throws
    /// [optional] The device is about to lose its memory's contents (ABI 1.7): no peer may
    /// map it from now until ``handleDeviceReset(hostDevice:)``. By default nothing happens.
    func handleDeviceResetBegin(hostDevice: UInt64) throws
}

extension DeviceFaultHandler {
    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws {
        try handleDeviceFault(hostDevice: hostDevice, address: address, access: access)
    }

    public func handleDeviceReset(hostDevice: UInt64) throws {}

    public func handleDeviceResetBegin(hostDevice: UInt64) throws {}
}
