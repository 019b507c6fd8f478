import Glibc

/// Free page reporting: a guest kernel with a balloon device that reports free memory hands
/// free blocks back to its hypervisor, which drops their backing; the next use of such a page
/// faults in the host (an exit and a zeroed host page) before the guest zeroes it again.
///
/// Why a benchmark asks: a first touch of memory freed moments before then costs more the
/// longer that memory stayed free, so it grows with a working set whose run is longer. On this
/// project's VMs (`page_reporting_order` 9) `bench sim`'s device triad zeroed its first
/// pages at 1 GB/s at 4 GiB against 11 GB/s for the arrays initialized right after a free
/// (perf, `clear_page_erms`), and the 4 GiB run took 1.12-1.27x the 64 MiB run's time per
/// GiB; with reporting off for a test (order 11, restored after), 0.85x.
public enum FreePageReporting {
    /// Where the kernel shows the reporting parameters.
    public static let parametersDirectory = "/sys/module/page_reporting/parameters"

    /// The buddy allocator's largest order on x86-64 with 4 KiB pages (`MAX_PAGE_ORDER`): a
    /// reporting order above it reports nothing.
    static let largestOrder = 10

    /// The smallest order of free blocks the kernel reports to the hypervisor, or `nil` when
    /// it reports none: no reporting in this kernel, no device registered (the order reads
    /// as -1, an unsigned 4294967295) or an order above ``largestOrder``.
    public static func reportedOrder(parametersAt directory: String = parametersDirectory) -> Int? {
        guard let file = fopen(directory + "/page_reporting_order", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let order = Int(text.filter { !$0.isWhitespace }), (0...largestOrder).contains(order) else { return nil }
        return order
    }
}
