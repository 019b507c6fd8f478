import CSVMPlatform
import SVMPluginKit

/// One kernel running on a simulated device, on the calling thread (`run_kernel`).
///
/// ## Steps
/// A kernel walks its SVM range in steps that end at a leaf's end (or the bounce buffer's).
/// Each step translates and touches memory while holding the page-table lock for reading,
/// so a zap waits for it. A step that finds no translation, or one that forbids the access,
/// releases the lock and reports a device fault from this thread, then replays: the host
/// maps the page meanwhile. An answer other than "replay" stops the kernel with that
/// status and the faulting address in the ``KernelResult``; the bytes done stay done.
///
/// ## What a step may touch
/// - Local VRAM: a plain copy in the device's memory; `INCREMENT` uses C11 atomic adds,
///   and only there (an atomic on system memory or without `SVM_BIND_ATOMIC` faults with
///   `.atomic`, so the host can migrate the page to the device first).
/// - System memory: `process_vm_readv`/`process_vm_writev` (see ``SystemMemoryAccess``); a
///   page they cannot reach is treated like a missing translation.
/// - Host buffers (`READ`/`WRITE`) are copied to or from a bounce buffer *outside* the lock,
///   so a host buffer that faults on the CPU cannot block a zap.
///
/// `COPY` reads the source into the bounce buffer and writes it out from there: overlapping
/// ranges give what `memcpy` would (unspecified).
struct SimDeviceKernelRun {
    /// Faults one step may report in a row without progress before the kernel stops with
    /// `EAGAIN`: a host that keeps answering "replay" without mapping the page would spin
    /// the device forever. Far above what any real service needs (one or two).
    static let replayLimit = 10_000
    /// The bounce buffer: the largest leaf, so one step of a 2 MiB page is one lock hold.
    static let bounceBytes: UInt64 = GPUPageTable.LeafSize.size2M.bytes

    /// What one step did.
    private enum Step {
        /// Bytes moved, at least 1.
        case moved(UInt64)
        /// Nothing moved: the access at the step's address faults.
        case fault(DeviceAccess)
    }

    private let kernel: DeviceKernel
    private let pageTable: SimDevicePageTable
    private let memory: SimDeviceMemory
    private let host: HostServices
    private let hostDevice: UInt64
    private let bounceBuffers: SimDeviceBounceBuffers

    private var result = KernelResult()
    /// Faults reported since the last step that moved bytes.
    private var replays = 0

    init(
        _ kernel: DeviceKernel, pageTable: SimDevicePageTable, memory: SimDeviceMemory,
        host: HostServices, hostDevice: UInt64, bounceBuffers: SimDeviceBounceBuffers
    ) {
        self.kernel = kernel
        self.pageTable = pageTable
        self.memory = memory
        self.host = host
        self.hostDevice = hostDevice
        self.bounceBuffers = bounceBuffers
    }

    /// Runs the kernel to completion or to the host's refusal of a fault.
    ///
    /// - Throws: `PluginErrno.invalidArgument` for a malformed kernel (a range that wraps
    ///   around, a NULL host buffer, a misaligned `INCREMENT`), `.ioError` when system
    ///   memory fails otherwise than with an unreachable page.
    mutating func run() throws(PluginErrno) -> KernelResult {
        try Self.validate(kernel)
        let bounce = try bounceBuffers.take()
        defer { bounceBuffers.recycle(bounce) }
        switch kernel {
        case .fill(let destination, let size, let byte):
            bounce.initializeMemory(as: UInt8.self, repeating: byte, count: Int(min(size, Self.bounceBytes)))
            result.bytes = try fill(destination, size, bounce)
        case .copy(let destination, let source, let size):
            result.bytes = try copy(destination, source, size, bounce)
        case .increment(let destination, let size, let addend):
            result.bytes = try increment(destination, size, addend)
        case .read(let source, let size, let hostBuffer):
            result.bytes = try read(source, size, UnsafeMutableRawPointer(bitPattern: UInt(hostBuffer))!, bounce)
        case .write(let destination, let size, let hostBuffer):
            result.bytes = try write(destination, size, UnsafeRawPointer(bitPattern: UInt(hostBuffer))!, bounce)
        }
        return result
    }

    private static func validate(_ kernel: DeviceKernel) throws(PluginErrno) {
        func fits(_ address: UInt64, _ size: UInt64) -> Bool { size <= UInt64.max - address }
        let valid: Bool
        switch kernel {
        case .fill(let destination, let size, _):
            valid = fits(destination, size)
        case .copy(let destination, let source, let size):
            valid = fits(destination, size) && fits(source, size)
        case .increment(let destination, let size, _):
            valid = fits(destination, size) && destination % 4 == 0 && size % 4 == 0
        case .read(let svm, let size, let hostBuffer), .write(let svm, let size, let hostBuffer):
            valid = fits(svm, size) && hostBuffer != 0 && fits(hostBuffer, size)
                && UInt(exactly: hostBuffer) != nil
        }
        guard valid else { throw .invalidArgument }
    }

    // MARK: Kernels: each returns the SVM bytes completed.

    private mutating func fill(
        _ destination: UInt64, _ size: UInt64, _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            let step = try write(destination + done, from: bounce, length: min(size - done, Self.bounceBytes))
            guard let moved = account(step, at: destination + done) else { break }
            done += moved
        }
        return done
    }

    private mutating func copy(
        _ destination: UInt64, _ source: UInt64, _ size: UInt64, _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> UInt64 {
        var done: UInt64 = 0
        // Kernel positions whose source bytes are in the bounce buffer.
        var staged: Range<UInt64> = 0 ..< 0
        while done < size {
            if !staged.contains(done) {
                let step = try read(source + done, into: bounce, length: min(size - done, Self.bounceBytes))
                guard let moved = account(step, at: source + done) else { break }
                staged = done ..< done + moved
                continue
            }
            let step = try write(
                destination + done, from: bounce + Int(done - staged.lowerBound),
                length: staged.upperBound - done)
            guard let moved = account(step, at: destination + done) else { break }
            done += moved
        }
        return done
    }

    private mutating func increment(
        _ destination: UInt64, _ size: UInt64, _ addend: UInt32
    ) throws(PluginErrno) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            let step = atomicAdd(destination + done, length: size - done, addend)
            guard let moved = account(step, at: destination + done) else { break }
            done += moved
        }
        return done
    }

    private mutating func read(
        _ source: UInt64, _ size: UInt64, _ hostBuffer: UnsafeMutableRawPointer,
        _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            let step = try read(source + done, into: bounce, length: min(size - done, Self.bounceBytes))
            guard let moved = account(step, at: source + done) else { break }
            // Outside the page-table lock: the host buffer may fault on the CPU.
            (hostBuffer + Int(done)).copyMemory(from: bounce, byteCount: Int(moved))
            done += moved
        }
        return done
    }

    private mutating func write(
        _ destination: UInt64, _ size: UInt64, _ hostBuffer: UnsafeRawPointer,
        _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> UInt64 {
        var done: UInt64 = 0
        // Kernel positions whose host bytes are in the bounce buffer.
        var staged: Range<UInt64> = 0 ..< 0
        while done < size {
            if !staged.contains(done) {
                // Outside the page-table lock: the host buffer may fault on the CPU.
                let end = min(size, done + Self.bounceBytes)
                bounce.copyMemory(from: hostBuffer + Int(done), byteCount: Int(end - done))
                staged = done ..< end
            }
            let step = try write(
                destination + done, from: bounce + Int(done - staged.lowerBound),
                length: staged.upperBound - done)
            guard let moved = account(step, at: destination + done) else { break }
            done += moved
        }
        return done
    }

    // MARK: Faults

    /// The bytes a step moved, 0 after a fault the host serviced (replay), or `nil` when
    /// the kernel must stop (`result` says why).
    private mutating func account(_ step: Step, at address: UInt64) -> UInt64? {
        switch step {
        case .moved(let bytes):
            replays = 0
            return bytes
        case .fault(let access):
            return serviceFault(at: address, access: access) ? 0 : nil
        }
    }

    /// Reports a fault to the host (no lock held) and says whether to replay.
    private mutating func serviceFault(at address: UInt64, access: DeviceAccess) -> Bool {
        result.faults += 1
        replays += 1
        do {
            try host.reportDeviceFault(hostDevice: hostDevice, address: address, access: access)
        } catch {
            stop(error as? PluginErrno ?? .ioError, at: address)
            return false
        }
        guard replays < Self.replayLimit else {
            stop(.tryAgain, at: address)
            return false
        }
        return true
    }

    private mutating func stop(_ status: PluginErrno, at address: UInt64) {
        result.stoppedBy = status
        result.faultAddress = address
    }

    // MARK: Steps: one leaf at most, under the page-table lock.

    /// Reads up to `length` bytes of SVM `address` into `buffer`.
    private func read(
        _ address: UInt64, into buffer: UnsafeMutableRawPointer, length: UInt64
    ) throws(PluginErrno) -> Step {
        try pageTable.withTranslation(of: address) { (translation) throws(PluginErrno) -> Step in
            guard let translation else { return .fault(.read) }
            let count = min(length, translation.leafRange.upperBound - address)
            switch translation.linkProtocol {
            case .localVRAM:
                buffer.copyMemory(from: vram(translation.address, count), byteCount: Int(count))
                return .moved(count)
            case .system:
                let copied = try SystemMemoryAccess.read(translation.address, into: buffer, length: count)
                return copied > 0 ? .moved(copied) : .fault(.read)
            case .pciePeerToPeer, .fabric:
                throw .ioError  // bind maps no peer memory yet
            }
        }
    }

    /// Writes up to `length` bytes of `buffer` to SVM `address`.
    private func write(
        _ address: UInt64, from buffer: UnsafeRawPointer, length: UInt64
    ) throws(PluginErrno) -> Step {
        try pageTable.withTranslation(of: address) { (translation) throws(PluginErrno) -> Step in
            guard let translation, translation.writable else { return .fault(.write) }
            let count = min(length, translation.leafRange.upperBound - address)
            switch translation.linkProtocol {
            case .localVRAM:
                vram(translation.address, count).copyMemory(from: buffer, byteCount: Int(count))
                return .moved(count)
            case .system:
                let copied = try SystemMemoryAccess.write(translation.address, from: buffer, length: count)
                return copied > 0 ? .moved(copied) : .fault(.write)
            case .pciePeerToPeer, .fabric:
                throw .ioError  // bind maps no peer memory yet
            }
        }
    }

    /// Adds `addend` to each `UInt32` of up to `length` bytes at SVM `address`, atomically.
    private func atomicAdd(_ address: UInt64, length: UInt64, _ addend: UInt32) -> Step {
        pageTable.withTranslation(of: address) { translation -> Step in
            guard let translation, translation.writable, translation.atomicAllowed,
                translation.linkProtocol == .localVRAM
            else { return .fault(.atomic) }
            // A multiple of 4: the address, the length and the leaf's end all are.
            let count = min(length, translation.leafRange.upperBound - address)
            let words = vram(translation.address, count).assumingMemoryBound(to: UInt32.self)
            svm_atomic_add_u32_array(words, Int(count / 4), addend)
            return .moved(count)
        }
    }

    /// The device memory at `offset`; bind checked that its leaves lie inside it.
    private func vram(_ offset: UInt64, _ count: UInt64) -> UnsafeMutableRawPointer {
        precondition(memory.contains(offset: offset, length: count), "a VRAM leaf outside device memory")
        return memory.base + Int(offset)
    }
}
