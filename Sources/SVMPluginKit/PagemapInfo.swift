import CSVMPluginABI

/// The device memory a device provides (`struct svm_pagemap_info`).
public struct PagemapInfo: Sendable, Hashable, Codable {
    /// The smallest chunk the device-memory allocator hands out: 4 KiB or 64 KiB.
    public var minPageSize: UInt32
    /// Device memory this pagemap can hand out, in bytes.
    public var capacityBytes: UInt64
    /// Device memory allocated now (ABI 1.1; 0 from an older plugin).
    public var usedBytes: UInt64

    public init(minPageSize: UInt32, capacityBytes: UInt64, usedBytes: UInt64 = 0) {
        self.minPageSize = minPageSize
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
    }

    public init(_ raw: svm_pagemap_info) {
        minPageSize = raw.has(\.min_page_size) ? raw.min_page_size : 0
        capacityBytes = raw.has(\.capacity_bytes) ? raw.capacity_bytes : 0
        usedBytes = raw.has(\.used_bytes) ? raw.used_bytes : 0
    }

    public var raw: svm_pagemap_info {
        var raw = svm_pagemap_info.sized()
        raw.min_page_size = minPageSize
        raw.capacity_bytes = capacityBytes
        raw.used_bytes = usedBytes
        return raw
    }
}
