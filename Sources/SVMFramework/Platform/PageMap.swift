import Glibc

/// Which pages of the calling process hold data, read from `/proc/self/pagemap` (one 64-bit
/// entry per page: bit 63 present, bit 62 swapped out). Unlike `mincore`, it tells a
/// swapped-out page, whose data must move with the others, from a hole.
final class PageMap: Sendable {
    private static let present: UInt64 = 1 << 63
    private static let swapped: UInt64 = 1 << 62

    /// `/proc/self/pagemap`, or -1 when it cannot be opened.
    private let descriptor: Int32

    init() {
        descriptor = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The runs of pages of `interval` (page-aligned) that hold data, in order; `nil` when
    /// the pagemap cannot be read. A snapshot: pages may come and go right after.
    func populatedRuns(_ interval: AddressInterval) -> [AddressInterval]? {
        guard descriptor >= 0 else { return nil }
        let pages = Int(interval.size / 4096)
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: pages) { entries -> [AddressInterval]? in
            let bytes = pages * 8
            let offset = off_t(interval.start / 4096 * 8)
            var done = 0
            while done < bytes {
                let count = pread(descriptor, UnsafeMutableRawPointer(entries.baseAddress!) + done, bytes - done, offset + off_t(done))
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return nil }
                done += count
            }
            var runs: [AddressInterval] = []
            var page = 0
            while page < pages {
                guard entries[page] & (Self.present | Self.swapped) != 0 else { page += 1; continue }
                let first = page
                while page < pages && entries[page] & (Self.present | Self.swapped) != 0 { page += 1 }
                runs.append(AddressInterval(start: interval.start + UInt64(first) * 4096, end: interval.start + UInt64(page) * 4096))
            }
            return runs
        }
    }

    /// Whether no page of `interval` holds data (all holes); `nil` when the pagemap cannot
    /// be read, which each caller decides how to take.
    func holdsNoData(_ interval: AddressInterval) -> Bool? {
        populatedRuns(interval).map(\.isEmpty)
    }

    /// The runs of pages of `interval` that hold no data (holes), in order; `nil` when the
    /// pagemap cannot be read.
    func holes(_ interval: AddressInterval) -> [AddressInterval]? {
        guard let populated = populatedRuns(interval) else { return nil }
        var holes: [AddressInterval] = []
        var cursor = interval.start
        for run in populated {
            if cursor < run.start { holes.append(AddressInterval(start: cursor, end: run.start)) }
            cursor = run.end
        }
        if cursor < interval.end { holes.append(AddressInterval(start: cursor, end: interval.end)) }
        return holes
    }
}
