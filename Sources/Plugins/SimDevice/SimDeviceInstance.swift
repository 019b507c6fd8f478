import SVMPluginKit
import Synchronization

/// One open simulated device: its memory, its page table and the kernels it runs.
///
/// The pieces live in their own types: ``SimDeviceMemory`` (VRAM and its buddy allocator),
/// ``SimDevicePageTable`` (the locked GPU page table) and ``SimDeviceKernelRun`` (kernel
/// execution and fault reporting). This type checks what crosses the ABI and glues them.
final class SimDeviceInstance: OpenDevice {
    let index: Int
    let hostDevice: UInt64
    let configuration: SimDeviceConfiguration
    private let host: HostServices
    private let memory: SimDeviceMemory
    private let pageTable = SimDevicePageTable()
    /// The plugin's devices' memories, which peer pieces name.
    private let peers: SimDevicePeers
    private let tlb: SimDeviceTLB
    private let bounceBuffers: SimDeviceBounceBuffers
    /// Set once by `close`; the ABI calls nothing afterwards, so this only makes a second
    /// close harmless.
    private let closed = Atomic<Bool>(false)
    /// Calls so far, for fault injection (`fail-alloc-every`, `fail-copy-every`,
    /// `fail-zap-every`).
    private let allocations = Atomic<Int>(0)
    private let copies = Atomic<Int>(0)
    private let zaps = Atomic<Int>(0)
    private let copiesOut = Atomic<Int>(0)
    /// Kernels run so far, for `reset-after-kernel`.
    private let kernels = Atomic<Int>(0)
    /// Kernels run under it shared, a reset exclusively: no kernel reads device memory
    /// while it is wiped, or before the host has heard of the reset (it would still bind
    /// the lost data).
    private let runGate = ReaderWriterLock(preferWriters: true)

    /// - Throws: `PluginErrno.outOfMemory` when the host cannot reserve the device memory.
    init(index: Int, hostDevice: UInt64, configuration: SimDeviceConfiguration, host: HostServices, peers: SimDevicePeers)
        throws(PluginErrno)
    {
        self.peers = peers
        self.index = index
        self.hostDevice = hostDevice
        self.configuration = configuration
        self.host = host
        memory = try SimDeviceMemory(
            size: configuration.memoryBytes, minPageSize: UInt64(configuration.minPageSize), host: host)
        bounceBuffers = SimDeviceBounceBuffers(size: Int(SimDeviceKernelRun.bounceBytes), host: host)
        tlb = SimDeviceTLB(entries: configuration.timing.tlbEntries)
        peers.register(memory, hostDevice: hostDevice)
    }

    func pagemapInfo() throws -> PagemapInfo {
        PagemapInfo(
            minPageSize: configuration.minPageSize, capacityBytes: configuration.memoryBytes,
            usedBytes: memory.usedBytes,
            hostBase: configuration.zeroCopy ? UInt64(UInt(bitPattern: memory.base)) : 0,
            hostSize: configuration.zeroCopy ? memory.size : 0)
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        peers.withdraw(hostDevice: hostDevice)
        memory.unmap()
        bounceBuffers.unmapAll()
    }

    // MARK: Device memory

    func allocateDeviceMemory(size: UInt64) throws -> UInt64 {
        try inject(configuration.failAllocationEvery, allocations, .outOfMemory, "devmem_alloc(\(size)): injected failure (ENOMEM)")
        return try memory.allocate(size: size)
    }

    /// Throws `error`, after logging `message`, when this call, counted in `calls`, is an
    /// Nth one (`every`; 0: never).
    private func inject(
        _ every: Int, _ calls: borrowing Atomic<Int>, _ error: PluginErrno, _ message: @autoclosure () -> String
    ) throws(PluginErrno) {
        guard every > 0, calls.add(1, ordering: .relaxed).newValue % every == 0 else { return }
        host.log(.debug, message())
        throw error
    }

    private func injectCopyFailure(_ operation: String) throws(PluginErrno) {
        try inject(configuration.failCopyEvery, copies, .ioError, "\(operation): injected failure (EIO)")
    }

    func freeDeviceMemory(offset: UInt64, size: UInt64) {
        guard !memory.free(offset: offset, size: size) else { return }
        // devmem_free cannot fail; a wrong free is a host bug worth a line.
        host.log(.error, "devmem_free(0x\(String(offset, radix: 16)), \(size)): not an allocation; ignored")
    }

    func copyToDeviceMemory(offset: UInt64, from source: UnsafeRawPointer, size: UInt64) throws {
        try injectCopyFailure("copy_to_devmem")
        try memory.copy(into: offset, from: source, length: size)
    }

    func copyFromDeviceMemory(offset: UInt64, to destination: UnsafeMutableRawPointer, size: UInt64) throws {
        try injectCopyFailure("copy_to_ram")
        try inject(configuration.failCopyOutEvery, copiesOut, .ioError, "copy_to_ram: injected failure (EIO)")
        try memory.copy(from: offset, to: destination, length: size)
    }

    // MARK: Page table and kernels

    func bind(address: UInt64, size: UInt64, pieces: [BindPiece], access: BindAccess) throws {
        try pageTable.map(SimDevicePageTable.leafRuns(address: address, size: size, pieces: pieces) { piece throws(PluginErrno) in
            try target(for: piece, access: access)
        })
    }

    /// One piece, as a fault binds: no array on the way.
    func bind(address: UInt64, size: UInt64, piece: BindPiece, access: BindAccess) throws {
        try pageTable.map(SimDevicePageTable.leafRun(address: address, size: size, piece: piece, target: target(for: piece, access: access)))
    }

    /// Where a piece points, once its memory is known to exist.
    private func target(for piece: BindPiece, access: BindAccess) throws(PluginErrno) -> GPUPageTable.Target {
        switch piece.linkProtocol {
        case .system:
            break  // a CPU address; reached with process_vm_*, so any value is safe
        case .localVRAM:
            guard memory.contains(offset: piece.address, length: piece.size) else { throw .invalidArgument }
        case .pciePeerToPeer, .fabric:
            // Only this plugin's own devices are reachable; no atomics across a link.
            guard piece.owner != hostDevice, let owner = peers.memory(of: piece.owner) else { throw .notSupported }
            guard owner.contains(offset: piece.address, length: piece.size) else { throw .invalidArgument }
            return GPUPageTable.Target(
                address: piece.address, linkProtocol: piece.linkProtocol, writable: access.contains(.writable),
                atomicAllowed: false, owner: piece.owner)
        }
        return GPUPageTable.Target(
            address: piece.address, linkProtocol: piece.linkProtocol,
            writable: access.contains(.writable), atomicAllowed: access.contains(.atomic))
    }

    func zap(address: UInt64, size: UInt64) throws {
        guard size <= UInt64.max - address else { throw PluginErrno.invalidArgument }
        try inject(
            configuration.failZapEvery, zaps, .ioError,
            "zap(0x\(String(address, radix: 16)), \(size)): injected failure (EIO), translations kept")
        pageTable.zap(address ..< address + size)
        tlb.invalidate(address ..< address + size)
    }

    func runKernel(_ kernel: DeviceKernel) throws -> KernelResult {
        let parts = SimDeviceParts(
            memory: memory, pageTable: pageTable, tlb: tlb, bounceBuffers: bounceBuffers, timing: configuration.timing,
            peers: peers)
        var run = SimDeviceKernelRun(kernel, device: parts, host: host, hostDevice: hostDevice)
        let result = try runGate.withReadLock { () throws(PluginErrno) in try run.run() }
        if kernels.add(1, ordering: .relaxed).newValue == configuration.resetAfterKernel { runGate.withWriteLock(reset) }
        return result
    }

    /// Injected reset (`reset-after-kernel`), with no kernel running: the memory's contents
    /// and the page table are lost, as after a GPU reset that loses VRAM; the host is told,
    /// before any kernel runs again, so that it stops trusting every allocation it made.
    private func reset() {
        // Peers that map this memory in place are zapped before it is wiped (ABI 1.7).
        do {
            try host.reportDeviceResetBegin(hostDevice: hostDevice)
        } catch {
            host.log(.warning, "report_device_reset_begin: \(error); a peer may read the wiped memory until the reset is reported")
        }
        let lost = memory.loseContents()
        pageTable.zap(0 ..< GPUPageTable.addressLimit)
        tlb.invalidate(0 ..< GPUPageTable.addressLimit)
        host.log(.warning, "reset after kernel \(configuration.resetAfterKernel) (reset-after-kernel): \(ByteCount.format(lost)) of device memory lost")
        do {
            try host.reportDeviceReset(hostDevice: hostDevice)
        } catch {
            host.log(.error, "report_device_reset: \(error); the host may still trust the lost memory")
        }
    }
}
