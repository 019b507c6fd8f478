import CSVMPluginABI

/// What a device did while it ran one kernel (the ABI 1.2 members of
/// `struct svm_kernel_result`): the counts the host's timing model and statistics need.
///
/// The device times only what happens inside it (``busyNanoseconds``: issuing accesses,
/// its memory's bandwidth, page-table walks); the host times fault service and every
/// transfer over a link, remote accesses included, from the other counts.
public struct KernelActivity: Sendable, Hashable, Codable {
    /// Memory accesses issued; each one is one TLB lookup.
    public var accesses: UInt64 = 0
    public var tlbHits: UInt64 = 0
    /// Each one a page-table walk.
    public var tlbMisses: UInt64 = 0
    /// Bytes read or written in the device's own memory.
    public var localBytes: UInt64 = 0
    /// Bytes read from and written to system memory in place (remote accesses).
    public var systemBytesRead: UInt64 = 0
    public var systemBytesWritten: UInt64 = 0
    /// Replayable-fault batches reported.
    public var faultBatches: UInt64 = 0
    /// Simulated time spent executing, fault service and remote transfers excluded.
    public var busyNanoseconds: UInt64 = 0

    public init() {}

    init(_ raw: svm_kernel_result) {
        accesses = raw.accesses
        tlbHits = raw.tlb_hits
        tlbMisses = raw.tlb_misses
        localBytes = raw.local_bytes
        systemBytesRead = raw.system_bytes_read
        systemBytesWritten = raw.system_bytes_written
        faultBatches = raw.fault_batches
        busyNanoseconds = raw.busy_ns
    }

    func write(into raw: inout svm_kernel_result) {
        raw.accesses = accesses
        raw.tlb_hits = tlbHits
        raw.tlb_misses = tlbMisses
        raw.local_bytes = localBytes
        raw.system_bytes_read = systemBytesRead
        raw.system_bytes_written = systemBytesWritten
        raw.fault_batches = faultBatches
        raw.busy_ns = busyNanoseconds
    }
}
