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
    /// Bytes read and written in peers' memory in place, over peer paths (ABI 1.7).
    public var peerBytesRead: UInt64 = 0
    public var peerBytesWritten: UInt64 = 0

    public init() {}

    /// The largest count a device may report for one kernel: 2^48 (281 TB, or 78 hours
    /// of simulated time). A larger value, as a broken plugin may return (`UINT64_MAX`), is
    /// taken as this, so that the host's sums over a run and its simulated clock, which
    /// add such counts, stay far from overflowing.
    public static let countLimit: UInt64 = 1 << 48

    /// `value` cut to ``countLimit``.
    static func bounded(_ value: UInt64) -> UInt64 { min(value, countLimit) }

    init(_ raw: svm_kernel_result) {
        let bounded = Self.bounded
        accesses = bounded(raw.accesses)
        tlbHits = bounded(raw.tlb_hits)
        tlbMisses = bounded(raw.tlb_misses)
        localBytes = bounded(raw.local_bytes)
        systemBytesRead = bounded(raw.system_bytes_read)
        systemBytesWritten = bounded(raw.system_bytes_written)
        faultBatches = bounded(raw.fault_batches)
        busyNanoseconds = bounded(raw.busy_ns)
        peerBytesRead = raw.has(\.peer_bytes_read) ? bounded(raw.peer_bytes_read) : 0
        peerBytesWritten = raw.has(\.peer_bytes_written) ? bounded(raw.peer_bytes_written) : 0
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
        raw.peer_bytes_read = peerBytesRead
        raw.peer_bytes_written = peerBytesWritten
    }
}
