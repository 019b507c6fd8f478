import SVMPluginKit

/// Services the device faults plugins report through `report_device_fault`.
///
/// Called on the reporting device's fault thread; the device waits for the answer. Return
/// normally to make the device replay the access; throw `PluginErrno.badAddress` for an
/// address that is not mapped, `.accessDenied` for a forbidden access.
public protocol DeviceFaultHandler: AnyObject, Sendable {
    func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws
}
