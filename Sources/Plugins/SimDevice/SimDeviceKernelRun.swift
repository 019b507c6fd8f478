import CSVMPlatform
import SVMPluginKit

#if canImport(Glibc)
import Glibc
#endif

/// One kernel running on a simulated device, on the calling thread (`run_kernel`).
///
/// ## Work items and fault batches
/// A kernel's range is cut into work items (64 KiB, or 4 KiB of indices for a gather), the
/// units that stall on a fault while the others go on, like a GPU's warps. A pass runs
/// every pending item until it completes or faults; each fault joins the current batch.
/// When the batch holds ``SimDeviceTiming/faultBatch`` faults, or every pending item has
/// faulted, the device reports the batch to the host, fault by fault from this thread,
/// then replays: the next pass starts again with the items that stalled. A fault on a
/// page that had no translation and has one by the time its turn comes (an earlier fault
/// of the batch mapped the range) is a duplicate and is not reported, as a GPU driver
/// drops duplicate entries of its fault buffer. An answer other than "replay" stops the
/// kernel with that status and the faulting address in the ``KernelResult``; the bytes
/// done stay done.
///
/// ## Steps
/// An item advances in steps that end at a leaf's end (or the item's). Each step
/// translates while holding the page-table lock for reading and looks the leaf up in the
/// TLB there; it touches device memory under that hold, so a zap waits for it, and system
/// memory after it (see ``SimDevicePageTable``). Nothing under the lock waits for the host.
///
/// ## What a step may touch
/// - Local VRAM: a plain copy in the device's memory; `INCREMENT` uses C11 atomic adds,
///   and only there (an atomic on system memory or without `SVM_BIND_ATOMIC` faults with
///   `.atomic`, so the host can migrate the page to the device first).
/// - System memory: `process_vm_readv`/`process_vm_writev` (see ``SystemMemoryAccess``); a
///   page they cannot reach is treated like a missing translation.
/// - Host buffers (`READ`/`WRITE`) are copied to or from the bounce buffer *outside* the
///   lock, so a host buffer that faults on the CPU cannot block a zap.
///
/// `COPY`, `TRIAD` and `GATHER` read their sources into the bounce buffer and write from
/// there: overlapping ranges give what `memcpy` would (unspecified).
///
/// ## Local steps
/// When every operand of a `FILL`, `COPY` or `TRIAD` step is local VRAM (and the
/// destination writable), the step works in device memory directly, under one hold of the
/// lock, without the bounce buffer: staging bytes that are already device memory is a copy
/// a GPU never makes, and it was most of a kernel's host time. A step that faults on an
/// operand after local ones does so without staging them (a replayed item used to copy its
/// sources again on every pass until the last one was mapped). Only where the result is
/// the one the bounce buffer gives: a `COPY` moves with `memmove`; a `TRIAD` whose
/// destination overlaps a source other than element for element is staged. A step that
/// reaches system or peer memory goes the bounce way, as if the local attempt had not been
/// made: it touched nothing and counted nothing. A `GATHER` translates its elements under
/// one hold of the lock. Either way the TLB sees the same lookups in the same order and
/// the counters the same bytes, so simulated time does not depend on the path.
///
/// ## Time
/// The run counts accesses (one per ``SimDeviceTiming/accessBytes`` of a step, one per
/// gathered element), TLB hits and misses and bytes by memory, and reports the execution
/// time ``SimDeviceTiming/busyNanoseconds(_:)`` gives; fault service and transfers over
/// links are the host's to time.
struct SimDeviceKernelRun {
    /// Batches in a row that may make no progress before the kernel stops with `EAGAIN`:
    /// a host that keeps answering "replay" without mapping the page would spin the device
    /// forever. Far above what any real service needs (one or two).
    static let replayLimit = 10_000
    /// The bounce buffer: the largest leaf.
    static let bounceBytes: UInt64 = GPUPageTable.LeafSize.size2M.bytes
    /// A work item of a streaming kernel.
    static let itemBytes: UInt64 = 64 << 10
    /// A work item of a gather: its indices.
    static let gatherItemBytes: UInt64 = 4 << 10

    private enum Step {
        /// Bytes moved, at least 1.
        case moved(UInt64)
        /// Nothing moved: the access faults.
        case fault(Fault)
    }

    private struct Fault {
        let address: UInt64
        let access: DeviceAccess
        /// Whether the page had a translation (then the fault is never a duplicate).
        let hadTranslation: Bool
    }

    private struct Item {
        let start: UInt64
        var done: UInt64
        let end: UInt64
    }

    /// What one access under the page-table lock saw, for the counters.
    private struct Touch {
        var tlbHit: Bool
        var bytes: UInt64
        var accesses: UInt64
        var linkProtocol: LinkProtocol
        var write: Bool
    }

    private let kernel: DeviceKernel
    private let device: SimDeviceParts
    private let host: HostServices
    private let hostDevice: UInt64

    private var result = KernelResult()

    init(_ kernel: DeviceKernel, device: SimDeviceParts, host: HostServices, hostDevice: UInt64) {
        self.kernel = kernel
        self.device = device
        self.host = host
        self.hostDevice = hostDevice
    }

    private var timing: SimDeviceTiming { device.timing }

    /// Runs the kernel to completion or to the host's refusal of a fault.
    ///
    /// - Throws: `PluginErrno.invalidArgument` for a malformed kernel (a range that wraps
    ///   around, a NULL host buffer, a misaligned `INCREMENT`, `TRIAD` or `GATHER`),
    ///   `.ioError` when system memory fails otherwise than with an unreachable page.
    mutating func run() throws(PluginErrno) -> KernelResult {
        try Self.validate(kernel)
        let bounce = try device.bounceBuffers.take()
        defer { device.bounceBuffers.recycle(bounce) }
        if case .fill(_, let size, let byte) = kernel {
            bounce.initializeMemory(as: UInt8.self, repeating: byte, count: Int(min(size, Self.itemBytes)))
        }
        var items = Self.items(of: kernel)
        var pending = Array(items.indices)
        var batches: UInt64 = 0
        var batchesWithoutProgress = 0
        while !pending.isEmpty {
            var batch: [Fault] = []
            var stalled: [Int] = []
            var progressed = false
            for (position, item) in pending.enumerated() {
                if batch.count == timing.faultBatch {
                    stalled.append(contentsOf: pending[position...])
                    break
                }
                let before = items[item].done
                let fault = try run(&items[item], bounce)
                if items[item].done > before { progressed = true }
                if let fault {
                    batch.append(fault)
                    stalled.append(item)
                }
            }
            pending = stalled
            guard !batch.isEmpty else { break }
            batches += 1
            batchesWithoutProgress = progressed ? 0 : batchesWithoutProgress + 1
            guard service(batch, number: batches) else { break }
            if batchesWithoutProgress >= Self.replayLimit {
                stop(.tryAgain, at: batch[0].address)
                break
            }
        }
        result.bytes = items.reduce(0) { $0 + $1.done - $1.start }
        result.activity.faultBatches = batches
        result.activity.busyNanoseconds = timing.busyNanoseconds(result.activity)
        return result
    }

    private static func validate(_ kernel: DeviceKernel) throws(PluginErrno) {
        func fits(_ address: UInt64, _ size: UInt64) -> Bool { size <= UInt64.max - address }
        func words(_ addresses: UInt64...) -> Bool { addresses.allSatisfy { $0 % 4 == 0 } }
        let valid: Bool
        switch kernel {
        case .fill(let destination, let size, _):
            valid = fits(destination, size)
        case .copy(let destination, let source, let size):
            valid = fits(destination, size) && fits(source, size)
        case .increment(let destination, let size, _):
            valid = fits(destination, size) && words(destination, size)
        case .read(let svm, let size, let hostBuffer), .write(let svm, let size, let hostBuffer):
            valid = fits(svm, size) && hostBuffer != 0 && fits(hostBuffer, size)
                && UInt(exactly: hostBuffer) != nil
        case .triad(let a, let b, let c, let size, _):
            valid = fits(a, size) && fits(b, size) && fits(c, size) && words(a, b, c, size)
        case .gather(let destination, let indices, let table, let size):
            // Any UInt32 index must stay inside the address space.
            valid = fits(destination, size) && fits(indices, size) && fits(table, 4 << 32)
                && words(destination, indices, table, size)
        }
        guard valid else { throw .invalidArgument }
    }

    /// The kernel's work items, in order.
    private static func items(of kernel: DeviceKernel) -> [Item] {
        let size = kernel.size
        let length = if case .gather = kernel { gatherItemBytes } else { itemBytes }
        return stride(from: 0, to: size, by: Int(length)).map { Item(start: $0, done: $0, end: min(size, $0 + length)) }
    }

    // MARK: Items

    /// Advances `item` until it completes (`nil`) or faults.
    private mutating func run(_ item: inout Item, _ bounce: UnsafeMutableRawPointer) throws(PluginErrno) -> Fault? {
        while item.done < item.end {
            switch try step(at: item.done, length: item.end - item.done, bounce) {
            case .moved(let bytes): item.done += bytes
            case .fault(let fault): return fault
            }
        }
        return nil
    }

    /// One step of the kernel at kernel offset `offset`, at most `length` bytes.
    private mutating func step(
        at offset: UInt64, length: UInt64, _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> Step {
        switch kernel {
        case .fill(let destination, _, let byte):
            if let step = localFill(destination + offset, length: length, byte) { return step }
            return try write(destination + offset, from: bounce, length: length)
        case .copy(let destination, let source, _):
            if let step = localCopy(destination + offset, source + offset, length: length) { return step }
            let staged = try read(source + offset, into: bounce, length: length)
            guard case .moved(let bytes) = staged else { return staged }
            return try write(destination + offset, from: bounce, length: bytes)
        case .increment(let destination, _, let addend):
            return atomicAdd(destination + offset, length: length, addend)
        case .read(let source, _, let hostBuffer):
            let step = try read(source + offset, into: bounce, length: length)
            if case .moved(let bytes) = step {
                // Outside the page-table lock: the host buffer may fault on the CPU.
                UnsafeMutableRawPointer(bitPattern: UInt(hostBuffer + offset))!.copyMemory(from: bounce, byteCount: Int(bytes))
            }
            return step
        case .write(let destination, _, let hostBuffer):
            // Outside the page-table lock: the host buffer may fault on the CPU.
            bounce.copyMemory(from: UnsafeRawPointer(bitPattern: UInt(hostBuffer + offset))!, byteCount: Int(length))
            return try write(destination + offset, from: bounce, length: length)
        case .triad(let a, let b, let c, _, let scalar):
            return try triad(a + offset, b + offset, c + offset, length: length, scalar, bounce)
        case .gather(let destination, let indices, let table, _):
            return try gather(destination + offset, indices + offset, table, length: length, bounce)
        }
    }

    private mutating func triad(
        _ a: UInt64, _ b: UInt64, _ c: UInt64, length: UInt64, _ scalar: UInt32, _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> Step {
        if let step = localTriad(a, b, c, length: length, scalar) { return step }
        let second = bounce + Int(Self.bounceBytes / 2)
        let fromB = try read(b, into: bounce, length: length)
        guard case .moved(let bBytes) = fromB else { return fromB }
        let fromC = try read(c, into: second, length: bBytes)
        guard case .moved(let bytes) = fromC else { return fromC }
        let count = Int(bytes / 4)
        let results = bounce.assumingMemoryBound(to: UInt32.self)
        let cs = second.assumingMemoryBound(to: UInt32.self)
        for index in 0..<count { results[index] = results[index] &+ scalar &* cs[index] }
        return try write(a, from: bounce, length: bytes)
    }

    private mutating func gather(
        _ destination: UInt64, _ indices: UInt64, _ table: UInt64, length: UInt64, _ bounce: UnsafeMutableRawPointer
    ) throws(PluginErrno) -> Step {
        let fromIndices = try read(indices, into: bounce, length: length)
        guard case .moved(let bytes) = fromIndices else { return fromIndices }
        let index = bounce.assumingMemoryBound(to: UInt32.self)
        let values = bounce + Int(Self.gatherItemBytes)
        let elements = Int(bytes / 4)
        var element = 0
        // Local elements under one hold of the lock, not one per element; a system element
        // ends the hold (its read is made without the lock, see ``SimDevicePageTable``) and
        // the next hold goes on after it. Each is read as ``read(_:into:length:)`` reads,
        // and the first that cannot be ends the step.
        while element < elements {
            let paused = try device.pageTable.withTranslations { (translate) throws(PluginErrno) -> Attempt? in
                while element < elements {
                    let address = table + UInt64(index[element]) * 4
                    let attempt = try readLocked(translate(address), at: address, into: values + element * 4, length: 4)
                    guard case .done(.moved, let touch) = attempt else { return attempt }
                    if let touch { count(touch) }
                    element += 1
                }
                return nil
            }
            guard let paused else { break }
            let step = try complete(paused)
            guard case .moved = step else { return step }
            element += 1
        }
        return try write(destination, from: values, length: bytes)
    }

    // MARK: Local steps: device memory only, no bounce buffer.

    /// How one operand of a local step translated; decided for every operand before the
    /// step touches anything, so that a step the bounce path must take has touched nothing.
    private enum Operand {
        /// Local VRAM the step may use (writable, for a destination).
        case local(GPUPageTable.Translation)
        /// The access faults: no translation, or a read-only destination. The bounce path
        /// would fault here too, after the lookups of the operands before this one.
        case fault(Fault)
        /// System or peer memory: the bounce path's.
        case elsewhere
    }

    /// A source operand: what ``readLocked(_:at:into:length:)`` would do with it.
    private static func source(_ translation: GPUPageTable.Translation?, at address: UInt64) -> Operand {
        guard let translation else { return .fault(Fault(address: address, access: .read, hadTranslation: false)) }
        return translation.linkProtocol == .localVRAM ? .local(translation) : .elsewhere
    }

    /// A destination operand: what ``write(_:from:length:)`` would do with it.
    private static func destination(_ translation: GPUPageTable.Translation?, at address: UInt64) -> Operand {
        guard let translation, translation.writable else {
            return .fault(Fault(address: address, access: .write, hadTranslation: translation != nil))
        }
        return translation.linkProtocol == .localVRAM ? .local(translation) : .elsewhere
    }

    /// `FILL` of local VRAM in place, or its fault; `nil`, having touched nothing, when the
    /// destination is not local VRAM.
    private mutating func localFill(_ destination: UInt64, length: UInt64, _ byte: UInt8) -> Step? {
        device.pageTable.withTranslation(of: destination) { translation -> Step? in
            switch Self.destination(translation, at: destination) {
            case .elsewhere: return nil
            case .fault(let fault): return .fault(fault)
            case .local(let translation):
                let count = min(length, translation.leafRange.upperBound - destination)
                memset(vram(translation.address, count), Int32(byte), Int(count))
                self.count(lookUp(translation, bytes: count, write: true))
                return .moved(count)
            }
        }
    }

    /// `COPY` from local VRAM to local VRAM in place, or its fault; `nil`, having touched
    /// nothing, when an operand the bounce path would reach is not local VRAM. The source
    /// is looked up for the bytes its leaf holds and the destination for those its leaf
    /// takes, as the bounce path's read and write do.
    private mutating func localCopy(_ destination: UInt64, _ source: UInt64, length: UInt64) -> Step? {
        device.pageTable.withTranslations { translate -> Step? in
            let from: GPUPageTable.Translation
            switch Self.source(translate(source), at: source) {
            case .elsewhere: return nil
            case .fault(let fault): return .fault(fault)
            case .local(let translation): from = translation
            }
            let read = min(length, from.leafRange.upperBound - source)
            let to: GPUPageTable.Translation
            switch Self.destination(translate(destination), at: destination) {
            case .elsewhere: return nil
            case .fault(let fault):
                count(lookUp(from, bytes: read, write: false))
                return .fault(fault)
            case .local(let translation): to = translation
            }
            let written = min(read, to.leafRange.upperBound - destination)
            // memmove, so overlapping ranges end as staging the source first leaves them.
            vram(to.address, written).copyMemory(from: vram(from.address, read), byteCount: Int(written))
            count(lookUp(from, bytes: read, write: false))
            count(lookUp(to, bytes: written, write: true))
            return .moved(written)
        }
    }

    /// `TRIAD` over local VRAM in place, or its fault; `nil`, having touched nothing, when
    /// an operand the bounce path would reach is not local VRAM, or when `a` overlaps a
    /// source other than element for element (an element-wise loop would then read what
    /// it wrote; staging the sources does not). Lookups as the bounce path's, in its order:
    /// `b` for its leaf, `c` for as much of that as its leaf holds, `a` for as much of that
    /// as its leaf takes.
    private mutating func localTriad(
        _ a: UInt64, _ b: UInt64, _ c: UInt64, length: UInt64, _ scalar: UInt32
    ) -> Step? {
        device.pageTable.withTranslations { translate -> Step? in
            let fromB: GPUPageTable.Translation
            switch Self.source(translate(b), at: b) {
            case .elsewhere: return nil
            case .fault(let fault): return .fault(fault)
            case .local(let translation): fromB = translation
            }
            let bBytes = min(length, fromB.leafRange.upperBound - b)
            let fromC: GPUPageTable.Translation
            switch Self.source(translate(c), at: c) {
            case .elsewhere: return nil
            case .fault(let fault):
                count(lookUp(fromB, bytes: bBytes, write: false))
                return .fault(fault)
            case .local(let translation): fromC = translation
            }
            let cBytes = min(bBytes, fromC.leafRange.upperBound - c)
            let toA: GPUPageTable.Translation
            switch Self.destination(translate(a), at: a) {
            case .elsewhere: return nil
            case .fault(let fault):
                count(lookUp(fromB, bytes: bBytes, write: false))
                count(lookUp(fromC, bytes: cBytes, write: false))
                return .fault(fault)
            case .local(let translation): toA = translation
            }
            let aBytes = min(cBytes, toA.leafRange.upperBound - a)
            guard Self.elementwiseSafe(toA.address, fromB.address, aBytes),
                Self.elementwiseSafe(toA.address, fromC.address, aBytes)
            else { return nil }
            let results = vram(toA.address, aBytes).assumingMemoryBound(to: UInt32.self)
            let bs = vram(fromB.address, bBytes).assumingMemoryBound(to: UInt32.self)
            let cs = vram(fromC.address, cBytes).assumingMemoryBound(to: UInt32.self)
            for index in 0..<Int(aBytes / 4) { results[index] = bs[index] &+ scalar &* cs[index] }
            count(lookUp(fromB, bytes: bBytes, write: false))
            count(lookUp(fromC, bytes: cBytes, write: false))
            count(lookUp(toA, bytes: aBytes, write: true))
            return .moved(aBytes)
        }
    }

    /// Whether `count` bytes at VRAM offsets `destination` and `source` are the same bytes
    /// or do not overlap: then a forward element-wise loop reads no element it wrote.
    private static func elementwiseSafe(_ destination: UInt64, _ source: UInt64, _ count: UInt64) -> Bool {
        destination == source || destination + count <= source || source + count <= destination
    }

    // MARK: Faults

    /// Reports a batch to the host (no lock held); false when the kernel must stop
    /// (`result` says why).
    private mutating func service(_ batch: [Fault], number: UInt64) -> Bool {
        for fault in batch {
            if !fault.hadTranslation, isResolved(fault) { continue }
            result.faults += 1
            do {
                try host.reportDeviceFault(hostDevice: hostDevice, address: fault.address, access: fault.access, batch: number)
            } catch {
                stop(error as? PluginErrno ?? .ioError, at: fault.address)
                return false
            }
        }
        return true
    }

    /// Whether the page table now allows the faulting access (an earlier fault of the batch
    /// mapped its range).
    private func isResolved(_ fault: Fault) -> Bool {
        device.pageTable.withTranslation(of: fault.address) { translation in
            guard let translation else { return false }
            if fault.access.contains(.atomic) {
                return translation.writable && translation.atomicAllowed && translation.linkProtocol == .localVRAM
            }
            return !fault.access.contains(.write) || translation.writable
        }
    }

    private mutating func stop(_ status: PluginErrno, at address: UInt64) {
        result.stoppedBy = status
        result.faultAddress = address
    }

    // MARK: Accesses: one leaf at most; device memory under the page-table lock, system memory after it.

    /// What an access found under the page-table lock.
    private enum Attempt {
        /// Done under the lock (device memory), or a fault.
        case done(Step, Touch?)
        /// System memory: the access is made once the lock is released, by ``complete(_:)``.
        case system(SystemAccess)
    }

    /// An access to system memory through `translation`, made without the page-table lock:
    /// it may wait for the host's CPU mirror (a missing page, when the mirror serves
    /// kernel-mode faults), which may be waiting for this device's zap.
    private struct SystemAccess {
        let translation: GPUPageTable.Translation
        /// The SVM address accessed, where a fault is reported.
        let address: UInt64
        let length: UInt64
        let buffer: UnsafeMutableRawPointer
        let write: Bool
    }

    /// Reads up to `length` bytes of SVM `address` into `buffer`.
    private mutating func read(
        _ address: UInt64, into buffer: UnsafeMutableRawPointer, length: UInt64
    ) throws(PluginErrno) -> Step {
        let attempt = try device.pageTable.withTranslation(of: address) { (translation) throws(PluginErrno) in
            try readLocked(translation, at: address, into: buffer, length: length)
        }
        return try complete(attempt)
    }

    /// The part of ``read(_:into:length:)`` made under the page-table lock, with the
    /// translation of `address`: a device-memory read, a fault, or the system read to make.
    private func readLocked(
        _ translation: GPUPageTable.Translation?, at address: UInt64, into buffer: UnsafeMutableRawPointer,
        length: UInt64
    ) throws(PluginErrno) -> Attempt {
        guard let translation else { return .done(.fault(Fault(address: address, access: .read, hadTranslation: false)), nil) }
        let count = min(length, translation.leafRange.upperBound - address)
        switch translation.linkProtocol {
        case .localVRAM:
            buffer.copyMemory(from: vram(translation.address, count), byteCount: Int(count))
            return .done(.moved(count), lookUp(translation, bytes: count, write: false))
        case .system:
            return .system(SystemAccess(translation: translation, address: address, length: count, buffer: buffer, write: false))
        case .pciePeerToPeer, .fabric:
            buffer.copyMemory(from: try peer(translation, count), byteCount: Int(count))
            return .done(.moved(count), lookUp(translation, bytes: count, write: false))
        }
    }

    /// Writes up to `length` bytes of `buffer` to SVM `address`.
    private mutating func write(
        _ address: UInt64, from buffer: UnsafeRawPointer, length: UInt64
    ) throws(PluginErrno) -> Step {
        let attempt = try device.pageTable.withTranslation(of: address) { (translation) throws(PluginErrno) -> Attempt in
            guard let translation, translation.writable else {
                return .done(.fault(Fault(address: address, access: .write, hadTranslation: translation != nil)), nil)
            }
            let count = min(length, translation.leafRange.upperBound - address)
            switch translation.linkProtocol {
            case .localVRAM:
                vram(translation.address, count).copyMemory(from: buffer, byteCount: Int(count))
                return .done(.moved(count), lookUp(translation, bytes: count, write: true))
            case .system:
                return .system(SystemAccess(
                    translation: translation, address: address, length: count, buffer: UnsafeMutableRawPointer(mutating: buffer),
                    write: true))
            case .pciePeerToPeer, .fabric:
                try peer(translation, count).copyMemory(from: buffer, byteCount: Int(count))
                return .done(.moved(count), lookUp(translation, bytes: count, write: true))
            }
        }
        return try complete(attempt)
    }

    /// Counts a done access, or makes a system one (outside the page-table lock) and
    /// counts it; the TLB lookup is made under the lock again, as every lookup is, and only
    /// while the leaf is still the one the access used: a zap meanwhile flushed it.
    private mutating func complete(_ attempt: Attempt) throws(PluginErrno) -> Step {
        switch attempt {
        case .done(let step, let touch):
            if let touch { count(touch) }
            return step
        case .system(let access):
            let target = access.translation.address
            let copied = access.write
                ? try SystemMemoryAccess.write(target, from: access.buffer, length: access.length)
                : try SystemMemoryAccess.read(target, into: access.buffer, length: access.length)
            guard copied > 0 else {
                return .fault(Fault(address: access.address, access: access.write ? .write : .read, hadTranslation: true))
            }
            let touch = device.pageTable.withTranslation(of: access.address) { now -> Touch in
                guard let now, now == access.translation else {
                    return Touch(tlbHit: false, bytes: copied, accesses: accesses(copied), linkProtocol: .system, write: access.write)
                }
                return lookUp(now, bytes: copied, write: access.write)
            }
            count(touch)
            return .moved(copied)
        }
    }

    /// Adds `addend` to each `UInt32` of up to `length` bytes at SVM `address`, atomically.
    private mutating func atomicAdd(_ address: UInt64, length: UInt64, _ addend: UInt32) -> Step {
        let (step, touch) = device.pageTable.withTranslation(of: address) { translation -> (Step, Touch?) in
            guard let translation, translation.writable, translation.atomicAllowed,
                translation.linkProtocol == .localVRAM
            else { return (.fault(Fault(address: address, access: .atomic, hadTranslation: translation != nil)), nil) }
            // A multiple of 4: the address, the length and the leaf's end all are.
            let count = min(length, translation.leafRange.upperBound - address)
            let words = vram(translation.address, count).assumingMemoryBound(to: UInt32.self)
            svm_atomic_add_u32_array(words, Int(count / 4), addend)
            // Read and written: twice the bytes through device memory.
            var touch = lookUp(translation, bytes: count, write: true)
            touch.bytes *= 2
            return (.moved(count), touch)
        }
        if let touch { count(touch) }
        return step
    }

    /// The TLB lookup of an access of `bytes` through `translation` (under the lock, so a
    /// zap's flush comes after it).
    private func lookUp(_ translation: GPUPageTable.Translation, bytes: UInt64, write: Bool) -> Touch {
        let leaf = translation.leafRange
        let hit = device.tlb.lookUp(leafStart: leaf.lowerBound, size: leaf.upperBound - leaf.lowerBound)
        return Touch(tlbHit: hit, bytes: bytes, accesses: accesses(bytes), linkProtocol: translation.linkProtocol, write: write)
    }

    /// The accesses of a step of `bytes`: one per ``SimDeviceTiming/accessBytes``.
    private func accesses(_ bytes: UInt64) -> UInt64 { (bytes + timing.accessBytes - 1) / timing.accessBytes }

    /// Adds an access to the counters: its first lookup hit or missed, the rest of a
    /// step's accesses fall in the same leaf and hit.
    private mutating func count(_ touch: Touch) {
        result.activity.accesses += touch.accesses
        result.activity.tlbHits += touch.accesses - (touch.tlbHit ? 0 : 1)
        if !touch.tlbHit { result.activity.tlbMisses += 1 }
        switch (touch.linkProtocol, touch.write) {
        case (.system, false): result.activity.systemBytesRead += touch.bytes
        case (.system, true): result.activity.systemBytesWritten += touch.bytes
        case (.pciePeerToPeer, false), (.fabric, false): result.activity.peerBytesRead += touch.bytes
        case (.pciePeerToPeer, true), (.fabric, true): result.activity.peerBytesWritten += touch.bytes
        default: result.activity.localBytes += touch.bytes
        }
    }

    /// The peer's memory a peer leaf's translation names: host memory of this process,
    /// always populated (the host fills every page of a live allocation), so the copy never
    /// faults into the host; the host zaps this mapping before the peer frees the block.
    /// `EIO` when the owner closed meanwhile, which the host's order of work rules out.
    private func peer(_ translation: GPUPageTable.Translation, _ count: UInt64) throws(PluginErrno) -> UnsafeMutableRawPointer {
        guard let memory = device.peers.memory(of: translation.owner), memory.contains(offset: translation.address, length: count) else {
            throw .ioError
        }
        return memory.base + Int(translation.address)
    }

    /// The device memory at `offset`; bind checked that its leaves lie inside it.
    private func vram(_ offset: UInt64, _ count: UInt64) -> UnsafeMutableRawPointer {
        precondition(device.memory.contains(offset: offset, length: count), "a VRAM leaf outside device memory")
        return device.memory.base + Int(offset)
    }
}
