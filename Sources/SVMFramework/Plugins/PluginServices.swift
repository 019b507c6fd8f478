import CSVMPlatform
import CSVMPluginABI
import SVMPluginKit
import Synchronization

/// The host side of `struct svm_host_services` for one plugin: the table the plugin
/// receives, and the Swift object its `host_ctx` points to.
///
/// It lives for as long as the process runs, even for a plugin whose init failed, because a
/// plugin may have kept the pointer: the table holds a strong reference that is never
/// released, like the plugin image itself, which is never unloaded.
final class PluginServices: Sendable {
    let pluginName: String
    let options: [String: String]
    let clock: SimulationClock
    let logHandler: @Sendable (PluginLogRecord) -> Void
    /// Where faults go; set once the SVM core attaches.
    let faultHandler: Locked<(any DeviceFaultHandler)?>
    /// The last error-level line the plugin logged, kept to explain a failed init.
    let lastError = Locked<String?>(nil)

    // Allocated in init and never freed or changed: the plugin may read it from any thread.
    nonisolated(unsafe) let table: UnsafeMutablePointer<svm_host_services>

    init(
        pluginName: String, options: [String: String], clock: SimulationClock,
        faultHandler: (any DeviceFaultHandler)?,
        logHandler: @escaping @Sendable (PluginLogRecord) -> Void
    ) {
        self.pluginName = pluginName
        self.options = options
        self.clock = clock
        self.logHandler = logHandler
        self.faultHandler = Locked(faultHandler)
        table = .allocate(capacity: 1)
        var raw = svm_host_services.sized()
        raw.abi_major = ABIVersion.current.major
        raw.abi_minor = ABIVersion.current.minor
        raw.log = { context, level, message in
            guard let services = PluginServices.from(context), let message else { return }
            services.log(LogLevel(rawValue: level) ?? .error, PluginText.sanitized(message, limit: PluginText.logLimit))
        }
        raw.report_device_fault = { context, hostDevice, fault in
            guard let services = PluginServices.from(context), let fault else {
                return PluginErrno.invalidArgument.status
            }
            return services.reportDeviceFault(hostDevice: hostDevice, fault: svm_device_fault.copy(from: fault))
        }
        raw.report_device_reset = { context, hostDevice in
            guard let services = PluginServices.from(context) else { return PluginErrno.invalidArgument.status }
            return services.serveReset("report_device_reset") { try $0.handleDeviceReset(hostDevice: hostDevice) }
        }
        raw.report_device_reset_begin = { context, hostDevice in
            guard let services = PluginServices.from(context) else { return PluginErrno.invalidArgument.status }
            return services.serveReset("report_device_reset_begin") { try $0.handleDeviceResetBegin(hostDevice: hostDevice) }
        }
        raw.add_private_memory = { context, address, size in
            guard let services = PluginServices.from(context) else { return PluginErrno.invalidArgument.status }
            return services.changePrivateMemory("add_private_memory", address: address, size: size) { (memory) throws(PrivateMemory.Refusal) in
                try memory.add(address: address, size: size)
            }
        }
        raw.remove_private_memory = { context, address, size in
            guard let services = PluginServices.from(context) else { return PluginErrno.invalidArgument.status }
            return services.changePrivateMemory("remove_private_memory", address: address, size: size) { (memory) throws(PrivateMemory.Refusal) in
                try memory.remove(address: address, size: size)
            }
        }
        raw.clock_now_ns = { context in PluginServices.from(context)?.clock.now ?? 0 }
        raw.config_get = { context, key, buffer, size in
            guard let services = PluginServices.from(context), let key else {
                return Int64(PluginErrno.invalidArgument.status)
            }
            guard let value = services.options[String(cString: key)] else {
                return Int64(PluginErrno.notFound.status)
            }
            if let buffer, size > 0 { _ = svm_abi_copy_name(buffer, size, value) }
            return Int64(value.utf8.count)
        }
        table.initialize(to: raw)
        table.pointee.host_ctx = Unmanaged.passRetained(self).toOpaque()
    }

    private static func from(_ context: UnsafeMutableRawPointer?) -> PluginServices? {
        context.map { Unmanaged<PluginServices>.fromOpaque($0).takeUnretainedValue() }
    }

    func log(_ level: LogLevel, _ message: String) {
        if level == .error { lastError.withLock { $0 = message } }
        logHandler(PluginLogRecord(plugin: pluginName, level: level, message: message))
    }

    /// `-EINVAL`, with an error logged for the plugin, when `service` is called from inside
    /// bind or zap, which the ABI forbids (the host holds its notifier lock, and serving the
    /// call would take it again); `nil` when the call may proceed.
    private func refusedInsidePluginCall(_ service: String) -> Int32? {
        guard svm_thread_in_plugin_call_without_host_services() != 0 else { return nil }
        log(.error, "\(service) called from inside bind or zap, which the ABI forbids: refused with EINVAL")
        return PluginErrno.invalidArgument.status
    }

    /// Runs `change` on the process's private memory; a refusal is `-EINVAL` with an error
    /// logged for the plugin, naming the interval.
    private func changePrivateMemory(
        _ service: String, address: UInt64, size: UInt64, _ change: (PrivateMemory) throws(PrivateMemory.Refusal) -> Void
    ) -> Int32 {
        do {
            try change(.process)
            return 0
        } catch {
            let interval = "0x\(String(address, radix: 16)) + \(size)"
            switch error {
            case .badInterval: log(.error, "\(service)(\(interval)): empty, unaligned or wrapping: refused with EINVAL")
            case .notMapped: log(.error, "\(service)(\(interval)): not all mapped: refused with EINVAL")
            case .overlaps(let other): log(.error, "\(service)(\(interval)): overlaps \(other), declared before: refused with EINVAL")
            case .notDeclared: log(.error, "\(service)(\(interval)): not an interval add_private_memory declared: refused with EINVAL")
            }
            return PluginErrno.invalidArgument.status
        }
    }

    /// A reset service (`report_device_reset_begin`, `report_device_reset`): `call` on the
    /// attached handler. With no SVM space attached no data of the host's lives in the
    /// device's memory, so there is nothing to do.
    private func serveReset(_ service: String, _ call: (any DeviceFaultHandler) throws -> Void) -> Int32 {
        if let refused = refusedInsidePluginCall(service) { return refused }
        guard let handler = faultHandler.withLock({ $0 }) else { return 0 }
        return PluginErrno.status { try call(handler) }
    }

    private func reportDeviceFault(hostDevice: UInt64, fault: svm_device_fault) -> Int32 {
        if let refused = refusedInsidePluginCall("report_device_fault") { return refused }
        guard let handler = faultHandler.withLock({ $0 }) else {
            // No SVM space is attached: nothing can back the address.
            return PluginErrno.badAddress.status
        }
        let access = fault.has(\.access) ? DeviceAccess(rawValue: fault.access) : .read
        let batch = fault.has(\.batch) ? fault.batch : 0
        return PluginErrno.status {
            try handler.handleDeviceFault(hostDevice: hostDevice, address: fault.address, access: access, batch: batch)
        }
    }
}
