import CSVMPluginABI
import SVMPluginKit
import Synchronization

/// A device plugin's C tables seen through the Swift ``DeviceDriver`` protocol.
///
/// The loader checked that every required op is present, so calls unwrap them.
final class LoadedDeviceDriver: DeviceDriver, @unchecked Sendable {
    // Immutable: the host's copies of the plugin's tables, and the plugin kept alive while
    // we exist.
    private let ops: svm_device_ops
    private let pagemapOps: svm_pagemap_ops
    private let lifetime: PluginLifetime
    private var context: UnsafeMutableRawPointer? { lifetime.context }

    init(
        ops: svm_device_ops, pagemapOps: svm_pagemap_ops, lifetime: PluginLifetime
    ) {
        self.ops = ops
        self.pagemapOps = pagemapOps
        self.lifetime = lifetime
    }

    func deviceCount() throws -> Int {
        var count: UInt32 = 0
        try PluginErrno.check(ops.device_count!(context, &count))
        guard count <= SVM_MAX_DEVICES else {
            throw PluginContractViolation("device_count returned \(count) devices; at most \(SVM_MAX_DEVICES) are allowed (SVM_MAX_DEVICES)")
        }
        return Int(count)
    }

    func deviceInfo(at index: Int) throws -> DeviceInfo {
        guard let index = UInt32(exactly: index) else { throw PluginErrno.noDevice }
        var info = svm_device_info.sized()
        try PluginErrno.check(ops.device_info!(context, index, &info))
        return DeviceInfo(info)
    }

    func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice {
        guard let index = UInt32(exactly: index) else { throw PluginErrno.noDevice }
        var deviceContext: UnsafeMutableRawPointer?
        try PluginErrno.check(ops.open_device!(context, index, hostDevice, &deviceContext))
        return LoadedOpenDevice(ops: ops, pagemapOps: pagemapOps, context: deviceContext, plugin: lifetime)
    }
}
