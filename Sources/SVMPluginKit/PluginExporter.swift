import Glibc
import CSVMPluginABI

/// Turns a Swift plugin type into the C descriptor and ops tables of the plugin ABI.
///
/// A Swift plugin keeps one exporter in a global constant and exports the entry symbol
/// with it:
///
/// ```swift
/// private let exporter = PluginExporter(device: MyDevicePlugin.self)
///
/// @_cdecl("svm_plugin_entry")
/// public func svmPluginEntry(
///     _ request: UnsafePointer<svm_plugin_request>?
/// ) -> UnsafePointer<svm_plugin_descriptor>? {
///     exporter.entry(request)
/// }
/// ```
///
/// The tables are allocated once and never freed: the host never unloads a plugin, because
/// the Swift runtime cannot unload an image whose metadata it registered.
public final class PluginExporter: @unchecked Sendable {
    // Written in init only, then read-only: safe to share between threads.
    private let descriptor: UnsafeMutablePointer<svm_plugin_descriptor>
    private let makePlugin: @Sendable (HostServices) throws -> PluginInstance

    /// Exports a device plugin: device ops and pagemap ops.
    public convenience init<Plugin: DevicePlugin>(device: Plugin.Type) {
        self.init(identity: Plugin.identity) { host in
            let plugin = try Plugin(host: host)
            return PluginInstance(plugin: plugin, host: host, driver: plugin, interconnect: nil)
        }
        let groups = Plugin.implementedOps
        descriptor.pointee.device_ops = UnsafePointer(Self.allocate(Self.deviceOps(groups)))
        descriptor.pointee.pagemap_ops = UnsafePointer(Self.allocate(Self.pagemapOps(groups)))
    }

    /// Exports an interconnect plugin: interconnect ops.
    public convenience init<Plugin: InterconnectPlugin>(interconnect: Plugin.Type) {
        self.init(identity: Plugin.identity) { host in
            let plugin = try Plugin(host: host)
            return PluginInstance(plugin: plugin, host: host, driver: nil, interconnect: plugin)
        }
        descriptor.pointee.interconnect_ops = UnsafePointer(
            Self.allocate(Self.interconnectOps()))
    }

    private init(
        identity: PluginIdentity,
        makePlugin: @escaping @Sendable (HostServices) throws -> PluginInstance
    ) {
        self.makePlugin = makePlugin
        var raw = svm_plugin_descriptor.sized()
        raw.abi_major = ABIVersion.current.major
        raw.abi_minor = ABIVersion.current.minor
        raw.kind = identity.kind.raw
        raw.name = UnsafePointer(strdup(identity.name))
        raw.version = UnsafePointer(strdup(identity.version))
        raw.description = UnsafePointer(strdup(identity.description))
        raw.`init` = { descriptor, host, context in
            guard let descriptor, let host, let context, let data = descriptor.pointee.plugin_data
            else { return PluginErrno.invalidArgument.status }
            let exporter = Unmanaged<PluginExporter>.fromOpaque(data).takeUnretainedValue()
            let services = HostServices(host)
            return PluginErrno.status(reporting: { services.log(.error, "\($0)") }) {
                let instance = try exporter.makePlugin(services)
                context.pointee = Unmanaged.passRetained(instance).toOpaque()
            }
        }
        raw.fini = { context in
            guard let context else { return }
            let instance = Unmanaged<PluginInstance>.fromOpaque(context).takeRetainedValue()
            instance.plugin.shutdown()
        }
        descriptor = Self.allocate(raw)
        descriptor.pointee.plugin_data = Unmanaged.passRetained(self).toOpaque()
    }

    /// The body of the plugin's `svm_plugin_entry`: the descriptor, or `nil` when the host
    /// speaks another ABI major.
    public func entry(_ request: UnsafePointer<svm_plugin_request>?)
        -> UnsafePointer<svm_plugin_descriptor>?
    {
        guard let request, request.pointee.has(\.host_abi_major),
            request.pointee.host_abi_major == ABIVersion.current.major
        else { return nil }
        return UnsafePointer(descriptor)
    }

    private static func allocate<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        pointer.initialize(to: value)
        return pointer
    }
}

/// What a `plugin_ctx` points to.
final class PluginInstance {
    let plugin: any SVMPlugin
    let host: HostServices
    let driver: (any DeviceDriver)?
    let interconnect: (any Interconnect)?

    init(
        plugin: any SVMPlugin, host: HostServices, driver: (any DeviceDriver)?,
        interconnect: (any Interconnect)?
    ) {
        self.plugin = plugin
        self.host = host
        self.driver = driver
        self.interconnect = interconnect
    }

    static func from(_ context: UnsafeMutableRawPointer?) -> PluginInstance? {
        context.map { Unmanaged<PluginInstance>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Runs an op and returns its status; unexpected errors are logged through the host.
    func status(_ op: String, _ body: () throws -> Void) -> Int32 {
        PluginErrno.status(reporting: { [host] in host.log(.error, "\(op) failed: \($0)") }, body)
    }
}

/// What a `device_ctx` points to.
final class DeviceInstance {
    let device: any OpenDevice
    let owner: PluginInstance

    init(device: any OpenDevice, owner: PluginInstance) {
        self.device = device
        self.owner = owner
    }

    static func from(_ context: UnsafeMutableRawPointer?) -> DeviceInstance? {
        context.map { Unmanaged<DeviceInstance>.fromOpaque($0).takeUnretainedValue() }
    }
}

// The C trampolines: they capture nothing, find their Swift object through the context
// pointer, and turn thrown errors into statuses.
extension PluginExporter {
    /// The device ops; the page-table group only when the plugin implements it.
    private static func deviceOps(_ groups: DeviceOpGroups) -> svm_device_ops {
        var ops = svm_device_ops.sized()
        ops.device_count = { context, count in
            guard let instance = PluginInstance.from(context), let driver = instance.driver,
                let count
            else { return PluginErrno.invalidArgument.status }
            return instance.status("device_count") {
                count.pointee = UInt32(clamping: try driver.deviceCount())
            }
        }
        ops.device_info = { context, index, info in
            guard let instance = PluginInstance.from(context), let driver = instance.driver,
                let info
            else { return PluginErrno.invalidArgument.status }
            return instance.status("device_info") {
                try driver.deviceInfo(at: Int(index)).raw.copyPrefix(into: info)
            }
        }
        ops.open_device = { context, index, hostDevice, deviceContext in
            guard let instance = PluginInstance.from(context), let driver = instance.driver,
                let deviceContext
            else { return PluginErrno.invalidArgument.status }
            return instance.status("open_device") {
                let device = try driver.openDevice(at: Int(index), hostDevice: hostDevice)
                let box = DeviceInstance(device: device, owner: instance)
                deviceContext.pointee = Unmanaged.passRetained(box).toOpaque()
            }
        }
        ops.close_device = { deviceContext in
            guard let deviceContext else { return }
            Unmanaged<DeviceInstance>.fromOpaque(deviceContext).takeRetainedValue().device.close()
        }
        guard groups.contains(.pageTable) else { return ops }
        // bind and zap run under the host's notifier lock, where no host service may be
        // called: their errors travel without being logged.
        ops.bind = { deviceContext, address, size, pieces, count, flags in
            guard let box = DeviceInstance.from(deviceContext), pieces != nil || count == 0
            else { return PluginErrno.invalidArgument.status }
            return PluginErrno.status {
                let raw = UnsafeBufferPointer(start: pieces, count: Int(count))
                let decoded = raw.compactMap(BindPiece.init)
                guard decoded.count == raw.count else { throw PluginErrno.invalidArgument }
                try box.device.bind(
                    address: address, size: size, pieces: decoded, access: BindAccess(rawValue: flags))
            }
        }
        ops.bind_ranges = { deviceContext, address, size, pieces, pieceSize, count, flags in
            guard let box = DeviceInstance.from(deviceContext), pieces != nil || count == 0,
                Int(pieceSize) >= MemoryLayout<svm_bind_range>.offset(of: \.owner)!
            else { return PluginErrno.invalidArgument.status }
            return PluginErrno.status {
                // The host's stride may be larger than this build's struct: read what fits.
                func decode(_ index: Int) -> BindPiece? {
                    var piece = svm_bind_range()
                    let source = UnsafeRawPointer(pieces!) + index * Int(pieceSize)
                    withUnsafeMutableBytes(of: &piece) { $0.copyMemory(from: UnsafeRawBufferPointer(start: source, count: min(Int(pieceSize), $0.count))) }
                    return BindPiece(piece)
                }
                if count == 1 {
                    // A fault's bind: one piece, no array.
                    guard let piece = decode(0) else { throw PluginErrno.invalidArgument }
                    try box.device.bind(address: address, size: size, piece: piece, access: BindAccess(rawValue: flags))
                    return
                }
                let decoded = (0..<Int(count)).compactMap(decode)
                guard decoded.count == Int(count) else { throw PluginErrno.invalidArgument }
                try box.device.bind(address: address, size: size, pieces: decoded, access: BindAccess(rawValue: flags))
            }
        }
        ops.zap = { deviceContext, address, size in
            guard let box = DeviceInstance.from(deviceContext) else {
                return PluginErrno.invalidArgument.status
            }
            return PluginErrno.status { try box.device.zap(address: address, size: size) }
        }
        ops.run_kernel = { deviceContext, kernel, result in
            guard let box = DeviceInstance.from(deviceContext), let kernel, let result,
                let decoded = DeviceKernel(kernel.pointee)
            else { return PluginErrno.invalidArgument.status }
            return box.owner.status("run_kernel") {
                try box.device.runKernel(decoded).raw.copyPrefix(into: result)
            }
        }
        return ops
    }

    /// The pagemap ops; the device-memory group only when the plugin implements it.
    private static func pagemapOps(_ groups: DeviceOpGroups) -> svm_pagemap_ops {
        var ops = svm_pagemap_ops.sized()
        ops.pagemap_info = { deviceContext, info in
            guard let box = DeviceInstance.from(deviceContext), let info else {
                return PluginErrno.invalidArgument.status
            }
            return box.owner.status("pagemap_info") {
                try box.device.pagemapInfo().raw.copyPrefix(into: info)
            }
        }
        guard groups.contains(.deviceMemory) else { return ops }
        ops.devmem_alloc = { deviceContext, size, offset in
            guard let box = DeviceInstance.from(deviceContext), let offset else {
                return PluginErrno.invalidArgument.status
            }
            return box.owner.status("devmem_alloc") {
                offset.pointee = try box.device.allocateDeviceMemory(size: size)
            }
        }
        ops.devmem_free = { deviceContext, offset, size in
            DeviceInstance.from(deviceContext)?.device.freeDeviceMemory(offset: offset, size: size)
        }
        ops.copy_to_devmem = { deviceContext, offset, source, size in
            guard let box = DeviceInstance.from(deviceContext) else {
                return PluginErrno.invalidArgument.status
            }
            guard let source else { return size == 0 ? 0 : PluginErrno.invalidArgument.status }
            return box.owner.status("copy_to_devmem") {
                try box.device.copyToDeviceMemory(offset: offset, from: source, size: size)
            }
        }
        ops.copy_to_ram = { deviceContext, offset, destination, size in
            guard let box = DeviceInstance.from(deviceContext) else {
                return PluginErrno.invalidArgument.status
            }
            guard let destination else { return size == 0 ? 0 : PluginErrno.invalidArgument.status }
            return box.owner.status("copy_to_ram") {
                try box.device.copyFromDeviceMemory(offset: offset, to: destination, size: size)
            }
        }
        return ops
    }

    private static func interconnectOps() -> svm_interconnect_ops {
        var ops = svm_interconnect_ops.sized()
        ops.link_info = { context, info in
            guard let instance = PluginInstance.from(context),
                let interconnect = instance.interconnect, let info
            else { return PluginErrno.invalidArgument.status }
            return instance.status("link_info") {
                try interconnect.linkInfo().raw.copyPrefix(into: info)
            }
        }
        ops.can_connect = { context, a, b in
            guard let instance = PluginInstance.from(context),
                let interconnect = instance.interconnect, let a, let b
            else { return PluginErrno.invalidArgument.status }
            var answer = false
            let status = instance.status("can_connect") {
                answer = try interconnect.canConnect(DeviceInfo(a.pointee), DeviceInfo(b.pointee))
            }
            return status != 0 ? status : (answer ? 0 : PluginErrno.notSupported.status)
        }
        ops.link_count = { context, count in
            guard let instance = PluginInstance.from(context), let interconnect = instance.interconnect, let count
            else { return PluginErrno.invalidArgument.status }
            return instance.status("link_count") { count.pointee = UInt32(try interconnect.links().count) }
        }
        ops.topology_link = { context, index, link in
            guard let instance = PluginInstance.from(context), let interconnect = instance.interconnect, let link
            else { return PluginErrno.invalidArgument.status }
            return instance.status("topology_link") {
                let links = try interconnect.links()
                guard Int(index) < links.count else { throw PluginErrno.noDevice }
                links[Int(index)].raw.copyPrefix(into: link)
            }
        }
        ops.path = { context, from, to, path in
            guard let instance = PluginInstance.from(context), let interconnect = instance.interconnect,
                let from, let to, let path
            else { return PluginErrno.invalidArgument.status }
            var found: PeerPath?
            let status = instance.status("path") { found = try interconnect.path(from: String(cString: from), to: String(cString: to)) }
            guard status == 0 else { return status }
            // No path is an answer, not a failure worth a log line.
            guard let found else { return PluginErrno.noLink.status }
            found.raw.copyPrefix(into: path)
            return 0
        }
        return ops
    }
}
