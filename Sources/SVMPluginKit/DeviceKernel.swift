import CSVMPluginABI

/// A kernel a device runs on SVM addresses (`struct svm_kernel`, ABI 1.1).
///
/// SVM addresses are CPU virtual addresses that the device reaches through its page table,
/// faulting as needed; host buffers are plain host memory the device reads or writes
/// directly (like the result buffer of the kernel's `dmirror` test device).
public enum DeviceKernel: Sendable, Hashable {
    /// Every byte of `[destination, destination + size)` becomes `byte`.
    case fill(destination: UInt64, size: UInt64, byte: UInt8)
    /// `[destination, +size)` becomes a copy of `[source, +size)`, both SVM.
    case copy(destination: UInt64, source: UInt64, size: UInt64)
    /// Each `UInt32` of `[destination, +size)` grows by `addend`, atomically.
    case increment(destination: UInt64, size: UInt64, addend: UInt32)
    /// The host buffer at `hostBuffer` receives a copy of SVM `[source, +size)`.
    case read(source: UInt64, size: UInt64, hostBuffer: UInt64)
    /// SVM `[destination, +size)` receives a copy of the host buffer at `hostBuffer`.
    case write(destination: UInt64, size: UInt64, hostBuffer: UInt64)
    /// STREAM's triad on `UInt32`s: `a[i] = b[i] &+ scalar &* c[i]` for `size / 4`
    /// elements, all SVM (ABI 1.2).
    case triad(a: UInt64, b: UInt64, c: UInt64, size: UInt64, scalar: UInt32)
    /// A gather of `UInt32`s: `destination[i] = table[indices[i]]` for `size / 4`
    /// elements, all SVM; an index past the table's mapping faults (ABI 1.2).
    case gather(destination: UInt64, indices: UInt64, table: UInt64, size: UInt64)

    /// The bytes of SVM memory the kernel covers (its destination's length).
    public var size: UInt64 {
        switch self {
        case .fill(_, let size, _), .copy(_, _, let size), .increment(_, let size, _), .read(_, let size, _),
            .write(_, let size, _), .triad(_, _, _, let size, _), .gather(_, _, _, let size):
            size
        }
    }

    public var raw: svm_kernel {
        var raw = svm_kernel.sized()
        switch self {
        case .fill(let destination, let size, let byte):
            (raw.kind, raw.destination, raw.size, raw.value) = (UInt32(SVM_KERNEL_FILL.rawValue), destination, size, UInt64(byte))
        case .copy(let destination, let source, let size):
            (raw.kind, raw.destination, raw.source, raw.size) = (UInt32(SVM_KERNEL_COPY.rawValue), destination, source, size)
        case .increment(let destination, let size, let addend):
            (raw.kind, raw.destination, raw.size, raw.value) = (UInt32(SVM_KERNEL_INCREMENT.rawValue), destination, size, UInt64(addend))
        case .read(let source, let size, let hostBuffer):
            (raw.kind, raw.destination, raw.source, raw.size) = (UInt32(SVM_KERNEL_READ.rawValue), hostBuffer, source, size)
        case .write(let destination, let size, let hostBuffer):
            (raw.kind, raw.destination, raw.source, raw.size) = (UInt32(SVM_KERNEL_WRITE.rawValue), destination, hostBuffer, size)
        case .triad(let a, let b, let c, let size, let scalar):
            (raw.kind, raw.destination, raw.source, raw.source2, raw.size, raw.value) = (UInt32(SVM_KERNEL_TRIAD.rawValue), a, b, c, size, UInt64(scalar))
        case .gather(let destination, let indices, let table, let size):
            (raw.kind, raw.destination, raw.source, raw.source2, raw.size) = (UInt32(SVM_KERNEL_GATHER.rawValue), destination, indices, table, size)
        }
        return raw
    }

    /// Decodes a kernel; `nil` for an unknown kind or a field out of range.
    public init?(_ raw: svm_kernel) {
        guard raw.has(\.value) else { return nil }
        switch raw.kind {
        case UInt32(SVM_KERNEL_FILL.rawValue):
            guard let byte = UInt8(exactly: raw.value) else { return nil }
            self = .fill(destination: raw.destination, size: raw.size, byte: byte)
        case UInt32(SVM_KERNEL_COPY.rawValue):
            self = .copy(destination: raw.destination, source: raw.source, size: raw.size)
        case UInt32(SVM_KERNEL_INCREMENT.rawValue):
            guard let addend = UInt32(exactly: raw.value) else { return nil }
            self = .increment(destination: raw.destination, size: raw.size, addend: addend)
        case UInt32(SVM_KERNEL_READ.rawValue):
            self = .read(source: raw.source, size: raw.size, hostBuffer: raw.destination)
        case UInt32(SVM_KERNEL_WRITE.rawValue):
            self = .write(destination: raw.destination, size: raw.size, hostBuffer: raw.source)
        case UInt32(SVM_KERNEL_TRIAD.rawValue):
            guard raw.has(\.source2), let scalar = UInt32(exactly: raw.value) else { return nil }
            self = .triad(a: raw.destination, b: raw.source, c: raw.source2, size: raw.size, scalar: scalar)
        case UInt32(SVM_KERNEL_GATHER.rawValue):
            guard raw.has(\.source2) else { return nil }
            self = .gather(destination: raw.destination, indices: raw.source, table: raw.source2, size: raw.size)
        default:
            return nil
        }
    }
}

/// How a kernel ended (`struct svm_kernel_result`).
public struct KernelResult: Sendable, Hashable {
    /// `nil` when the kernel completed; otherwise the host's answer to the fault that
    /// stopped it (`.badAddress` for unmapped memory, `.accessDenied` for a protection).
    public var stoppedBy: PluginErrno?
    /// Where the kernel stopped, when `stoppedBy` is set.
    public var faultAddress: UInt64
    /// Device faults reported while the kernel ran.
    public var faults: UInt64
    /// Bytes of SVM memory completed.
    public var bytes: UInt64
    /// What the device did, for timing and statistics (ABI 1.2; zero from an older plugin
    /// or a device that does not simulate time).
    public var activity: KernelActivity

    public init(
        stoppedBy: PluginErrno? = nil, faultAddress: UInt64 = 0, faults: UInt64 = 0, bytes: UInt64 = 0,
        activity: KernelActivity = KernelActivity()
    ) {
        self.stoppedBy = stoppedBy
        self.faultAddress = faultAddress
        self.faults = faults
        self.bytes = bytes
        self.activity = activity
    }

    /// Reads the members the owner's `struct_size` covers; absent ones are 0.
    public init(_ raw: svm_kernel_result) {
        let status = raw.has(\.status) ? raw.status : 0
        stoppedBy = PluginErrno(status: status)
        faultAddress = raw.has(\.fault_address) ? raw.fault_address : 0
        faults = raw.has(\.faults) ? KernelActivity.bounded(raw.faults) : 0
        bytes = raw.has(\.bytes) ? KernelActivity.bounded(raw.bytes) : 0
        activity = raw.has(\.busy_ns) ? KernelActivity(raw) : KernelActivity()
    }

    public var raw: svm_kernel_result {
        var raw = svm_kernel_result.sized()
        raw.status = stoppedBy?.status ?? 0
        raw.fault_address = faultAddress
        raw.faults = faults
        raw.bytes = bytes
        activity.write(into: &raw)
        return raw
    }
}

/// One physically contiguous piece of a bind (`struct svm_bind_piece`).
public struct BindPiece: Sendable, Hashable {
    /// System: the CPU virtual address; local VRAM: an offset in the device's memory; peer
    /// protocols: an offset in the owning peer's memory.
    public var address: UInt64
    public var linkProtocol: LinkProtocol
    /// The piece is `4 KiB << order` bytes.
    public var order: UInt8
    /// For the peer protocols, the host device id of the device whose memory it is (ABI
    /// 1.7 `svm_bind_range.owner`); 0 otherwise.
    public var owner: UInt64

    public init(address: UInt64, linkProtocol: LinkProtocol, order: UInt8, owner: UInt64 = 0) {
        self.address = address
        self.linkProtocol = linkProtocol
        self.order = order
        self.owner = owner
    }

    /// Whether the piece is a peer's memory.
    public var isPeer: Bool { linkProtocol == .pciePeerToPeer || linkProtocol == .fabric }

    public var size: UInt64 { 4096 << UInt64(order) }

    /// The largest order whose size, `4 KiB << order`, still fits a 64-bit address space.
    public static let maxOrder: UInt8 = 51

    /// `nil` for a protocol this build does not know or an order above ``maxOrder``.
    public init?(_ raw: svm_bind_piece) {
        guard let linkProtocol = LinkProtocol(raw: raw.protocol),
            let order = UInt8(exactly: raw.order), order <= Self.maxOrder
        else { return nil }
        self.init(address: raw.address, linkProtocol: linkProtocol, order: order)
    }

    public var raw: svm_bind_piece {
        svm_bind_piece(address: address, protocol: linkProtocol.raw, order: UInt32(order))
    }

    /// `nil` for a protocol this build does not know, or a size that is not `4 KiB << n`
    /// with `address` aligned to it.
    public init?(_ raw: svm_bind_range) {
        guard let linkProtocol = LinkProtocol(raw: raw.protocol), raw.size >= 4096, raw.size & (raw.size - 1) == 0,
            raw.address % raw.size == 0
        else { return nil }
        let order = UInt8((raw.size / 4096).trailingZeroBitCount)
        guard order <= Self.maxOrder else { return nil }
        self.init(address: raw.address, linkProtocol: linkProtocol, order: order, owner: raw.owner)
    }

    public var range: svm_bind_range {
        svm_bind_range(address: address, size: size, protocol: linkProtocol.raw, reserved: 0, owner: owner)
    }
}

/// What a bind allows (`enum svm_bind_flags`).
public struct BindAccess: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let writable = BindAccess(rawValue: SVM_BIND_WRITABLE.rawValue)
    public static let atomic = BindAccess(rawValue: SVM_BIND_ATOMIC.rawValue)
}
