import SVMPluginKit

/// Services the device faults plugins report through `report_device_fault`.
///
/// Called on the reporting device's fault thread; the device waits for the answer. Return
/// normally to make the device replay the access; throw `PluginErrno.badAddress` for an
/// address that is not mapped, `.accessDenied` for a forbidden access.
public protocol DeviceFaultHandler: AnyObject, Sendable {
    func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws
    /// [optional] The same with the device's replayable-fault batch (counted from 1 per
    /// kernel; 0 when the device does not batch). By default the batch is ignored.
    func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws
}

extension DeviceFaultHandler {
    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws {
        try handleDeviceFault(hostDevice: hostDevice, address: address, access: access)
    }
}
