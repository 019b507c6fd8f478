import CSVMPluginABI
import SVMPluginKit
import Synchronization

/// A device plugin's C tables seen through the Swift ``DeviceDriver`` protocol.
///
/// The loader checked that every required op is present, so calls unwrap them.
final class LoadedDeviceDriver: DeviceDriver, @unchecked Sendable {
    // Immutable: the plugin's static tables, and the plugin kept alive while we exist.
    private let ops: UnsafePointer<svm_device_ops>
    private let pagemapOps: UnsafePointer<svm_pagemap_ops>
    private let lifetime: PluginLifetime
    private var context: UnsafeMutableRawPointer? { lifetime.context }

    init(
        ops: UnsafePointer<svm_device_ops>, pagemapOps: UnsafePointer<svm_pagemap_ops>,
        lifetime: PluginLifetime
    ) {
        self.ops = ops
        self.pagemapOps = pagemapOps
        self.lifetime = lifetime
    }

    func deviceCount() throws -> Int {
        var count: UInt32 = 0
        try PluginErrno.check(ops.pointee.device_count!(context, &count))
        return Int(count)
    }

    func deviceInfo(at index: Int) throws -> DeviceInfo {
        guard let index = UInt32(exactly: index) else { throw PluginErrno.noDevice }
        var info = svm_device_info.sized()
        try PluginErrno.check(ops.pointee.device_info!(context, index, &info))
        return DeviceInfo(info)
    }

    func openDevice(at index: Int, hostDevice: UInt64) throws -> any OpenDevice {
        guard let index = UInt32(exactly: index) else { throw PluginErrno.noDevice }
        var deviceContext: UnsafeMutableRawPointer?
        try PluginErrno.check(ops.pointee.open_device!(context, index, hostDevice, &deviceContext))
        return LoadedOpenDevice(ops: ops, pagemapOps: pagemapOps, context: deviceContext, plugin: lifetime)
    }
}

/// An open device of a loaded plugin; closes it once.
final class LoadedOpenDevice: OpenDevice, @unchecked Sendable {
    // Immutable tables and context; `closed` guards against a second close_device.
    private let ops: UnsafePointer<svm_device_ops>
    private let pagemapOps: UnsafePointer<svm_pagemap_ops>
    private let context: UnsafeMutableRawPointer?
    private let closed = Atomic<Bool>(false)
    /// Keeps the plugin from being finalised before this device is closed.
    private let plugin: PluginLifetime

    init(
        ops: UnsafePointer<svm_device_ops>, pagemapOps: UnsafePointer<svm_pagemap_ops>,
        context: UnsafeMutableRawPointer?, plugin: PluginLifetime
    ) {
        self.ops = ops
        self.pagemapOps = pagemapOps
        self.context = context
        self.plugin = plugin
    }

    func pagemapInfo() throws -> PagemapInfo {
        guard !closed.load(ordering: .acquiring) else { throw PluginErrno.noDevice }
        var info = svm_pagemap_info.sized()
        try PluginErrno.check(pagemapOps.pointee.pagemap_info!(context, &info))
        return PagemapInfo(info)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        ops.pointee.close_device!(context)
    }

    deinit { close() }
}
