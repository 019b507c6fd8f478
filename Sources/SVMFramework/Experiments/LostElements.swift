/// Which elements of an ``SVMArray`` a workload must not read: their data was lost (their
/// pages are poisoned, and reading one would raise `SIGBUS`) or was never computed (a kernel
/// whose inputs were lost did not run). Per 4 KiB page, the unit of loss.
public struct LostElements: Sendable {
    /// Per page of the array; empty when nothing is lost.
    private let pages: [Bool]
    private static let elementsPerPage = 4096 / MemoryLayout<UInt32>.size

    init(array: SVMArray, lost: [AddressInterval]) {
        guard !lost.isEmpty else { pages = []; return }
        var pages = [Bool](repeating: false, count: (array.count + Self.elementsPerPage - 1) / Self.elementsPerPage)
        for interval in lost {
            let first = max(interval.start, array.address)
            let end = min(interval.end, array.address + array.byteCount)
            guard first < end else { continue }
            for page in Int((first - array.address) / 4096)...Int((end - 1 - array.address) / 4096) { pages[page] = true }
        }
        self.pages = pages
    }

    /// Whether element `index` is lost.
    public subscript(index: Int) -> Bool { !pages.isEmpty && pages[index / Self.elementsPerPage] }
}
