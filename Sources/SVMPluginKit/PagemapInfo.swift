import CSVMPluginABI

/// The device memory a device provides (`struct svm_pagemap_info`).
public struct PagemapInfo: Sendable, Hashable, Codable {
    /// The smallest chunk the device-memory allocator hands out: 4 KiB or 64 KiB.
    public var minPageSize: UInt32
    /// Device memory this pagemap can hand out, in bytes.
    public var capacityBytes: UInt64
    /// Device memory allocated now (ABI 1.1; 0 from an older plugin).
    public var usedBytes: UInt64
    /// Where device memory is host memory of this process (ABI 1.4): byte `o` of device
    /// memory is at `hostBase + o`, and the host migrates by moving pages instead of copying
    /// (see `host_base` in the ABI header for the rules). 0: device memory is not host memory.
    /// Not encoded: an address of one process means nothing in a report.
    public var hostBase: UInt64 = 0
    /// Bytes of device memory at ``hostBase``; 0 when it is not host memory.
    public var hostSize: UInt64 = 0

    private enum CodingKeys: String, CodingKey {
        case minPageSize, capacityBytes, usedBytes, hostSize
    }

    public init(minPageSize: UInt32, capacityBytes: UInt64, usedBytes: UInt64 = 0, hostBase: UInt64 = 0, hostSize: UInt64 = 0) {
        self.minPageSize = minPageSize
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.hostBase = hostBase
        self.hostSize = hostSize
    }

    public init(_ raw: svm_pagemap_info) {
        minPageSize = raw.has(\.min_page_size) ? raw.min_page_size : 0
        capacityBytes = raw.has(\.capacity_bytes) ? raw.capacity_bytes : 0
        usedBytes = raw.has(\.used_bytes) ? raw.used_bytes : 0
        // Both or neither: a plugin's struct cut between them declares no host memory.
        if raw.has(\.host_size) {
            hostBase = raw.host_base
            hostSize = raw.host_size
        }
    }

    public var raw: svm_pagemap_info {
        var raw = svm_pagemap_info.sized()
        raw.min_page_size = minPageSize
        raw.capacity_bytes = capacityBytes
        raw.used_bytes = usedBytes
        raw.host_base = hostBase
        raw.host_size = hostSize
        return raw
    }

    /// Whether device memory is host memory the host may move pages into and out of.
    public var isHostMemory: Bool { hostBase != 0 && hostSize > 0 }
}
