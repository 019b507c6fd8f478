/// What one device did in an experiment, in simulated time.
public struct DeviceStatistics: Sendable, Hashable, Codable {
    public struct Faults: Sendable, Hashable, Codable {
        public var read = 0
        public var write = 0
        public var atomic = 0
        public var total: Int { read + write + atomic }
    }

    public var name: String
    public var kernels = 0
    /// Device faults reported to the host (duplicates in a batch are not).
    public var faults = Faults()
    public var faultBatches: UInt64 = 0
    public var migrationsToDevice = 0
    public var bytesToDevice: UInt64 = 0
    /// Back to system memory: CPU faults, evictions, releases.
    public var migrationsToSystem = 0
    public var bytesToSystem: UInt64 = 0
    public var evictions = 0
    /// Directly over peer paths: out of this device's memory into a peer's, and in.
    public var migrationsToPeers = 0
    public var bytesToPeers: UInt64 = 0
    public var migrationsFromPeers = 0
    public var bytesFromPeers: UInt64 = 0
    public var accesses: UInt64 = 0
    public var tlbHits: UInt64 = 0
    public var tlbMisses: UInt64 = 0
    /// Bytes the device read and wrote in system memory in place, over the link.
    public var remoteBytesRead: UInt64 = 0
    public var remoteBytesWritten: UInt64 = 0
    /// Bytes the device read and wrote in peers' memory in place, over peer paths.
    public var peerBytesRead: UInt64 = 0
    public var peerBytesWritten: UInt64 = 0
    /// Simulated time running kernels (fault service included), of which executing.
    public var busyNanoseconds: UInt64 = 0
    public var executionNanoseconds: UInt64 = 0
    /// Simulated time spent servicing fault batches.
    public var faultServiceNanoseconds: UInt64 = 0
    /// The DMA mappings of its bindings (system memory, peers over PCIe), and their share of
    /// the fault service time.
    public var dma = DMAWork()
    public var dmaNanoseconds: UInt64 = 0
    /// Resets the device reported, and the data lost with them or with copies back that
    /// kept failing (ranges, bytes).
    public var resets = 0
    public var lostRanges = 0
    public var lostBytes: UInt64 = 0

    public init(name: String) { self.name = name }

    mutating func count(_ access: DeviceAccessKind) {
        switch access {
        case .read: faults.read += 1
        case .write: faults.write += 1
        case .atomic: faults.atomic += 1
        }
    }
}

/// The strongest kind of a fault's access.
enum DeviceAccessKind {
    case read, write, atomic
}
