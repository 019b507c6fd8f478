#if canImport(Glibc)
import Glibc
#endif
import SVMPluginKit

/// A simulated device's GPU page table behind a reader-writer lock.
///
/// ## Locking
/// Kernels hold the lock for reading while they translate, and while they touch device
/// memory a translation names, so several kernels run at once (their atomics really race)
/// and a zap, which takes the lock for writing, returns only after every device-memory
/// access that used an old translation has finished: the TLB flush of real hardware.
/// Nothing done under the lock waits for the host: a kernel releases it before it reports
/// a fault, and before it touches system memory. A system access (`process_vm_readv` on
/// a CPU address) can wait for the host's CPU mirror when the mirror serves kernel-mode
/// faults, and the mirror may be waiting for this zap: DESIGN's invariant 4 (no lock the
/// fault handler needs is held while managed memory is touched). So a system access that
/// translated before a zap may end after it. That is safe because the host never copies
/// a CPU page a device can reach in place: it moves pages (`UFFDIO_MOVE`, which refuses a
/// page an access has pinned) and a late access to a page moved away faults like a fresh
/// one. The lock prefers writers, so a stream of kernels cannot starve the zap of an
/// invalidation.
final class SimDevicePageTable: @unchecked Sendable {
    /// One run of equal leaves that a bind maps: `size` bytes at `virtualAddress`.
    struct LeafRun {
        var virtualAddress: UInt64
        var size: UInt64
        var pageSize: GPUPageTable.LeafSize
        var target: GPUPageTable.Target
    }

    private let lock = ReaderWriterLock(preferWriters: true)
    /// Protected by `lock`: read for translations, written by bind and zap.
    private var table = GPUPageTable()

    /// Translates `address` and runs `body` with the result while holding the lock for
    /// reading: what `body` reads or writes through the translation cannot outlive a zap.
    /// `body` must not block or call the host.
    func withTranslation<Result, Failure: Error>(
        of address: UInt64, _ body: (GPUPageTable.Translation?) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try lock.withReadLock { () throws(Failure) in try body(table.translate(address)) }
    }

    /// Runs `body` with a translator while holding the lock for reading once, for a step
    /// that touches several addresses (a triad's three operands, a gather's elements): they
    /// are all translated against one state of the table, and the lock is taken once
    /// rather than once per address. The same rules as ``withTranslation(of:_:)``.
    func withTranslations<Result, Failure: Error>(
        _ body: (_ translate: (UInt64) -> GPUPageTable.Translation?) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try lock.withReadLock { () throws(Failure) in try body { table.translate($0) } }
    }

    /// The map of one run (a fault's bind): nothing to roll back if it fails.
    ///
    /// - Throws: ``GPUPageTableError`` (`EINVAL`) for a misaligned or overlapping run.
    func map(_ run: LeafRun) throws(GPUPageTableError) {
        try lock.withWriteLock { () throws(GPUPageTableError) in
            try table.map(virtualAddress: run.virtualAddress, size: run.size, pageSize: run.pageSize, target: run.target)
        }
    }

    /// Maps every run, or none of them when one fails.
    ///
    /// - Throws: ``GPUPageTableError`` (`EINVAL`) for a misaligned or overlapping run.
    func map(_ runs: [LeafRun]) throws(GPUPageTableError) {
        try lock.withWriteLock { () throws(GPUPageTableError) in
            for (index, run) in runs.enumerated() {
                do throws(GPUPageTableError) {
                    try table.map(
                        virtualAddress: run.virtualAddress, size: run.size, pageSize: run.pageSize,
                        target: run.target)
                } catch {
                    // Whole leaves mapped just now: unmapping them cannot fail.
                    for done in runs[..<index] {
                        _ = try? table.unmap(done.virtualAddress ..< done.virtualAddress + done.size)
                    }
                    throw error
                }
            }
        }
    }

    /// Unmaps every leaf that intersects `range`, widened to whole leaves, and returns
    /// after every access that used one of them has finished. VA past 2^48 has no leaves.
    func zap(_ range: Range<UInt64>) {
        let range = range.clamped(to: 0 ..< GPUPageTable.addressLimit)
        guard !range.isEmpty else { return }
        // Cannot fail: the widened range is 4 KiB aligned, below 2^48 and cuts no leaf.
        lock.withWriteLock { _ = try? table.unmap(table.leafAlignedRange(covering: range)) }
    }

    /// The leaves a bind of `pieces` at `address` needs: for each piece, the largest leaf
    /// size to which the piece's size, its VA and its target are all aligned.
    ///
    /// `target` says where each piece points (it checks the piece's memory exists): called
    /// while the runs are built, so that a bind makes one array, not two.
    ///
    /// - Throws: `PluginErrno.invalidArgument` when `address` is not 4 KiB aligned, a
    ///   piece's address is not aligned to its size, or the sizes do not add up to `size`.
    static func leafRuns(
        address: UInt64, size: UInt64, pieces: [BindPiece], target: (BindPiece) throws(PluginErrno) -> GPUPageTable.Target
    ) throws(PluginErrno) -> [LeafRun] {
        try checkBindRange(address: address, size: size)
        var runs: [LeafRun] = []
        runs.reserveCapacity(pieces.count)
        var virtualAddress = address
        var remaining = size
        for piece in pieces {
            let run = try leafRun(at: virtualAddress, piece: piece, target: target(piece), remaining: remaining)
            runs.append(run)
            virtualAddress += run.size
            remaining -= run.size
        }
        guard remaining == 0 else { throw .invalidArgument }
        return runs
    }

    /// ``leafRuns(address:size:pieces:target:)`` for a bind of one piece (what a fault binds):
    /// its one run, without arrays.
    static func leafRun(address: UInt64, size: UInt64, piece: BindPiece, target: GPUPageTable.Target) throws(PluginErrno) -> LeafRun {
        try checkBindRange(address: address, size: size)
        let run = try leafRun(at: address, piece: piece, target: target, remaining: size)
        guard run.size == size else { throw .invalidArgument }
        return run
    }

    private static func checkBindRange(address: UInt64, size: UInt64) throws(PluginErrno) {
        guard size > 0, size <= UInt64.max - address, address % GPUPageTable.LeafSize.size4K.bytes == 0
        else { throw .invalidArgument }
    }

    /// The run of one piece at `virtualAddress`, of at most `remaining` bytes: the largest
    /// leaf size to which the piece's size, its VA and its target are all aligned.
    private static func leafRun(
        at virtualAddress: UInt64, piece: BindPiece, target: GPUPageTable.Target, remaining: UInt64
    ) throws(PluginErrno) -> LeafRun {
        let pieceSize = piece.size
        guard piece.order <= BindPiece.maxOrder, piece.address % pieceSize == 0, pieceSize <= remaining
        else { throw .invalidArgument }
        func fits(_ leaf: GPUPageTable.LeafSize) -> Bool {
            leaf.bytes <= pieceSize && virtualAddress % leaf.bytes == 0 && target.address % leaf.bytes == 0
        }
        // Largest first, without `allCases` (an array made on every call).
        let leaf: GPUPageTable.LeafSize = fits(.size2M) ? .size2M : fits(.size64K) ? .size64K : .size4K
        return LeafRun(virtualAddress: virtualAddress, size: pieceSize, pageSize: leaf, target: target)
    }
}
