import CSVMPluginABI

/// Severity of a plugin's log line (`enum svm_log_level`).
public enum LogLevel: Int32, Sendable, Comparable, CaseIterable, Codable {
    case debug = 0
    case info = 1
    case warning = 2
    case error = 3

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The kinds of access a device fault reports (`enum svm_access`).
public struct DeviceAccess: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let read = DeviceAccess(rawValue: SVM_ACCESS_READ.rawValue)
    public static let write = DeviceAccess(rawValue: SVM_ACCESS_WRITE.rawValue)
    public static let atomic = DeviceAccess(rawValue: SVM_ACCESS_ATOMIC.rawValue)
}

extension DeviceAccess: CustomStringConvertible {
    /// "read", "write", "atomic", joined with "+"; "none" for no bit.
    public var description: String {
        let names = [(Self.read, "read"), (.write, "write"), (.atomic, "atomic")].filter { contains($0.0) }.map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: "+")
    }
}

/// The services the host gives a plugin (`struct svm_host_services`), valid until the
/// plugin's `shutdown()` returns. Every call checks that the host's table has the service,
/// so a plugin built against a newer minor still runs in an older host.
public struct HostServices: @unchecked Sendable {
    // The host owns this table and keeps it alive and unchanged while the plugin is loaded.
    private let table: UnsafePointer<svm_host_services>

    public init(_ table: UnsafePointer<svm_host_services>) { self.table = table }

    /// The ABI version the host speaks.
    public var hostABI: ABIVersion {
        ABIVersion(major: table.pointee.abi_major, minor: table.pointee.abi_minor)
    }

    /// Logs one line through the host. Any thread.
    public func log(_ level: LogLevel, _ message: String) {
        guard table.pointee.has(\.log), let log = table.pointee.log else { return }
        log(table.pointee.host_ctx, level.rawValue, message)
    }

    /// Reports a device fault and waits until the host has serviced it. Returns normally
    /// when the device should replay the access; throws `PluginErrno.badAddress` when the
    /// address is not mapped and `.accessDenied` when the protection forbids the access.
    /// `batch` numbers the device's replayable-fault batches from 1 per kernel (0: none).
    public func reportDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64 = 0)
        throws
    {
        guard table.pointee.has(\.report_device_fault),
            let report = table.pointee.report_device_fault
        else { throw PluginErrno.notSupported }
        var fault = svm_device_fault.sized()
        fault.address = address
        fault.access = access.rawValue
        fault.batch = batch
        if let error = PluginErrno(status: report(table.pointee.host_ctx, hostDevice, &fault)) {
            throw error
        }
    }

    /// Tells the host that the device it opened as `hostDevice` lost its memory's contents
    /// (a reset; ABI 1.3). Call after the device's memory and page table are reset, before
    /// it runs anything else; returns once the host has invalidated the lost ranges.
    /// Throws `PluginErrno.notSupported` from a host older than 1.3, which cannot be told.
    public func reportDeviceReset(hostDevice: UInt64) throws {
        guard table.pointee.has(\.report_device_reset), let report = table.pointee.report_device_reset else {
            throw PluginErrno.notSupported
        }
        if let error = PluginErrno(status: report(table.pointee.host_ctx, hostDevice)) { throw error }
    }

    /// Declares `[address, address + size)` memory of the plugin's own (ABI 1.5): the host
    /// makes no SVM range over it and answers a device fault on it with `-EFAULT`. Throws
    /// `PluginErrno.notSupported` from a host older than 1.5, `.invalidArgument` for an
    /// interval that is unaligned, empty, not mapped or overlaps one declared before.
    public func addPrivateMemory(address: UInt64, size: UInt64) throws(PluginErrno) {
        guard table.pointee.has(\.add_private_memory), let add = table.pointee.add_private_memory else {
            throw .notSupported
        }
        if let error = PluginErrno(status: add(table.pointee.host_ctx, address, size)) { throw error }
    }

    /// Withdraws an interval ``addPrivateMemory(address:size:)`` declared, before unmapping it.
    public func removePrivateMemory(address: UInt64, size: UInt64) throws(PluginErrno) {
        guard table.pointee.has(\.remove_private_memory), let remove = table.pointee.remove_private_memory else {
            throw .notSupported
        }
        if let error = PluginErrno(status: remove(table.pointee.host_ctx, address, size)) { throw error }
    }

    /// Tells the host that the device it opened as `hostDevice` is about to lose its memory's
    /// contents (ABI 1.7), before anything is wiped: on return no peer maps that memory, and
    /// none will until ``reportDeviceReset(hostDevice:)``. Throws `PluginErrno.notSupported`
    /// from an older host.
    public func reportDeviceResetBegin(hostDevice: UInt64) throws {
        guard table.pointee.has(\.report_device_reset_begin), let report = table.pointee.report_device_reset_begin else {
            throw PluginErrno.notSupported
        }
        if let error = PluginErrno(status: report(table.pointee.host_ctx, hostDevice)) { throw error }
    }

    /// The host's simulated time in nanoseconds.
    public func now() -> UInt64 {
        guard table.pointee.has(\.clock_now_ns), let now = table.pointee.clock_now_ns else {
            return 0
        }
        return now(table.pointee.host_ctx)
    }

    /// The value of configuration `key` given to this plugin, or `nil` when not set.
    public func config(_ key: String) -> String? {
        guard table.pointee.has(\.config_get), let get = table.pointee.config_get else {
            return nil
        }
        var buffer = [CChar](repeating: 0, count: 256)
        var length = get(table.pointee.host_ctx, key, &buffer, buffer.count)
        if length < 0 { return nil }
        if length >= buffer.count {
            buffer = [CChar](repeating: 0, count: Int(length) + 1)
            length = get(table.pointee.host_ctx, key, &buffer, buffer.count)
        }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) },
                      as: UTF8.self)
    }
}
