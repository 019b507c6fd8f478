import CSVMPlatform
import CSVMPluginABI
import SVMPluginKit
import Synchronization

/// An open device of a loaded plugin, seen through ``OpenDevice``; closes it once.
///
/// The ABI 1.1 ops are optional: each wrapper calls the C op only when the plugin's table
/// is large enough to hold it (`SVM_ABI_HAS`) and the pointer is set, and otherwise throws
/// `PluginErrno.notSupported` (``freeDeviceMemory(offset:size:)`` does nothing). The loader
/// has checked that `devmem_alloc` never comes without the three ops it needs.
final class LoadedOpenDevice: OpenDevice, SVMCapableDevice, @unchecked Sendable {
    // Immutable tables (the host's copies) and context; `closed` guards against a second close_device and
    // against ops after close.
    private let ops: svm_device_ops
    private let pagemapOps: svm_pagemap_ops
    private let context: UnsafeMutableRawPointer?
    private let closed = Atomic<Bool>(false)
    /// Keeps the plugin from being finalised before this device is closed.
    private let plugin: PluginLifetime

    init(
        ops: svm_device_ops, pagemapOps: svm_pagemap_ops, context: UnsafeMutableRawPointer?,
        plugin: PluginLifetime
    ) {
        self.ops = ops
        self.pagemapOps = pagemapOps
        self.context = context
        self.plugin = plugin
    }

    // MARK: Capabilities

    var supportsDeviceMemory: Bool { devmemAlloc != nil }

    var supportsPageTable: Bool { (bindOp != nil || bindRangesOp != nil) && zapOp != nil && runKernelOp != nil }

    // The optional ops, nil when the table is too small for them or they are NULL.
    private var devmemAlloc: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutablePointer<UInt64>?) -> Int32)? {
        pagemapOps.has(\.devmem_alloc) ? pagemapOps.devmem_alloc : nil
    }
    private var devmemFree: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64) -> Void)? {
        pagemapOps.has(\.devmem_free) ? pagemapOps.devmem_free : nil
    }
    private var copyToDevmem: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeRawPointer?, UInt64) -> Int32)? {
        pagemapOps.has(\.copy_to_devmem) ? pagemapOps.copy_to_devmem : nil
    }
    private var copyToRAM: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutableRawPointer?, UInt64) -> Int32)? {
        pagemapOps.has(\.copy_to_ram) ? pagemapOps.copy_to_ram : nil
    }
    private var bindOp: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64, UnsafePointer<svm_bind_piece>?, UInt32, UInt32) -> Int32)? {
        ops.has(\.bind) ? ops.bind : nil
    }
    private var bindRangesOp: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64, UnsafePointer<svm_bind_range>?, UInt32, UInt32, UInt32) -> Int32)? {
        ops.has(\.bind_ranges) ? ops.bind_ranges : nil
    }
    private var zapOp: (@convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64) -> Int32)? {
        ops.has(\.zap) ? ops.zap : nil
    }
    private var runKernelOp: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<svm_kernel>?, UnsafeMutablePointer<svm_kernel_result>?) -> Int32)? {
        ops.has(\.run_kernel) ? ops.run_kernel : nil
    }

    private var isOpen: Bool { !closed.load(ordering: .acquiring) }

    // MARK: ABI 1.0

    func pagemapInfo() throws -> PagemapInfo {
        guard isOpen else { throw PluginErrno.noDevice }
        var info = svm_pagemap_info.sized()
        try PluginErrno.check(pagemapOps.pagemap_info!(context, &info))
        return PagemapInfo(info)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        ops.close_device!(context)
    }

    // MARK: ABI 1.1, device memory

    func allocateDeviceMemory(size: UInt64) throws -> UInt64 {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let devmemAlloc else { throw PluginErrno.notSupported }
        var offset: UInt64 = 0
        try PluginErrno.check(devmemAlloc(context, size, &offset))
        return offset
    }

    func freeDeviceMemory(offset: UInt64, size: UInt64) {
        guard isOpen, let devmemFree else { return }
        devmemFree(context, offset, size)
    }

    func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let copyToDevmem else { throw PluginErrno.notSupported }
        try PluginErrno.check(copyToDevmem(context, offset, source, size))
    }

    func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let copyToRAM else { throw PluginErrno.notSupported }
        try PluginErrno.check(copyToRAM(context, offset, destination, size))
    }

    // MARK: ABI 1.1, page table and kernels

    func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws {
        try bind(address: address, size: size, list: pieces, access: access)
    }

    /// One piece, as a fault binds: no array made for it.
    func bind(address: UInt64, size: UInt64, piece: BindPiece, access: BindAccess) throws {
        try bind(address: address, size: size, list: CollectionOfOne(piece), access: access)
    }

    private func bind(address: UInt64, size: UInt64, list pieces: some Collection<BindPiece>, access: BindAccess) throws {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let count = UInt32(exactly: pieces.count) else { throw PluginErrno.invalidArgument }
        if let bindRangesOp {
            // On the stack for a few pieces (a fault binds one): no array per bind.
            try withUnsafeTemporaryAllocation(of: svm_bind_range.self, capacity: pieces.count) { buffer in
                for (index, piece) in pieces.enumerated() { buffer.initializeElement(at: index, to: piece.range) }
                try PluginErrno.check(withoutHostServices {
                    bindRangesOp(context, address, size, buffer.baseAddress, UInt32(MemoryLayout<svm_bind_range>.stride), count, access.rawValue)
                })
            }
            return
        }
        // Without the 1.7 op a piece cannot name its owner: no peer memory is bound.
        guard let bindOp, !pieces.contains(where: \.isPeer) else { throw PluginErrno.notSupported }
        let raw = pieces.map(\.raw)
        try raw.withUnsafeBufferPointer { buffer in
            try PluginErrno.check(withoutHostServices { bindOp(context, address, size, buffer.baseAddress, count, access.rawValue) })
        }
    }

    /// Runs a call of bind or zap, which the ABI forbids to call host services: the host holds
    /// its notifier lock, and a service would take it again (see ``PluginServices``).
    private func withoutHostServices(_ call: () -> Int32) -> Int32 {
        svm_thread_enter_plugin_call_without_host_services()
        defer { svm_thread_leave_plugin_call_without_host_services() }
        return call()
    }

    func zap(address: UInt64, size: UInt64) throws {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let zapOp else { throw PluginErrno.notSupported }
        try PluginErrno.check(withoutHostServices { zapOp(context, address, size) })
    }

    func runKernel(_ kernel: DeviceKernel) throws -> KernelResult {
        guard isOpen else { throw PluginErrno.noDevice }
        guard let runKernelOp else { throw PluginErrno.notSupported }
        var raw = kernel.raw
        var result = svm_kernel_result.sized()
        try PluginErrno.check(runKernelOp(context, &raw, &result))
        return KernelResult(result)
    }

    deinit { close() }
}
