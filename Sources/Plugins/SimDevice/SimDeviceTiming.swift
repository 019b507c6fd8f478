import SVMPluginKit

/// What a simulated device's execution costs in simulated time. Defaults model an Intel
/// Arc A770 (Intel's published specifications: 32 Xe-cores at 2.1 GHz, 560 GB/s of
/// GDDR6), with a fault batch as NVIDIA's UVM driver uses.
struct SimDeviceTiming: Sendable, Hashable {
    /// Units issuing accesses in parallel (Xe-cores).
    var executionUnits = 32
    /// Time for one unit to issue one access: one cycle at 2.1 GHz.
    var issueNanoseconds = 1 / 2.1
    /// Bytes one access moves: a 64-byte cache line, Xe's line size. A gather's element
    /// access is one access however small.
    var accessBytes: UInt64 = 64
    /// Device-memory bandwidth, bytes per second.
    var memoryBytesPerSecond = 560e9
    /// TLB entries (fully associative, LRU), each one page-table leaf.
    var tlbEntries = 2048
    /// One page-table walk after a TLB miss, in nanoseconds: an assumption of a few
    /// dependent memory reads of a four-level walk, partly cached.
    var walkNanoseconds: UInt64 = 250
    /// Replayable faults gathered before the device reports them: 256, as NVIDIA's UVM
    /// driver batches (`uvm_perf_fault_batch_count`).
    var faultBatch = 256

    /// The execution time of what a kernel did: issue or memory bandwidth, whichever
    /// limits, plus the page-table walks.
    func busyNanoseconds(_ activity: KernelActivity) -> UInt64 {
        let issue = Double(activity.accesses) * issueNanoseconds / Double(executionUnits)
        let memory = Double(activity.localBytes) * 1e9 / memoryBytesPerSecond
        let walks = Double(activity.tlbMisses) * Double(walkNanoseconds)
        let total = (max(issue, memory) + walks).rounded(.up)
        // Bounded as the host bounds every count (and a Double past UInt64 would trap).
        let limit = Double(KernelActivity.countLimit)
        return total.isFinite && total < limit ? UInt64(total) : KernelActivity.countLimit
    }
}
