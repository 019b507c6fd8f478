/// One CPU mapping of the process, as the SVM space needs to know it (the `find_vma`
/// answer).
public struct CPUMapping: Hashable, Sendable {
    public var interval: AddressInterval
    public var readable: Bool
    public var writable: Bool
    /// `MAP_SHARED`: devices may access it in place, but it cannot migrate.
    public var shared: Bool
    /// Anonymous memory (`malloc`, `mmap(MAP_ANONYMOUS)`, heap); file mappings are not.
    public var anonymous: Bool

    public init(interval: AddressInterval, readable: Bool, writable: Bool, shared: Bool, anonymous: Bool) {
        self.interval = interval
        self.readable = readable
        self.writable = writable
        self.shared = shared
        self.anonymous = anonymous
    }

    /// Whether pages of this mapping may move to device memory: private anonymous memory
    /// the CPU can read and write (`UFFDIO_MOVE` only moves pages of writable mappings).
    public var canMigrate: Bool { anonymous && !shared && readable && writable }
}

/// What the SVM space asks of the CPU address space it mirrors.
public protocol CPUAddressSpace: Sendable {
    /// The mapping containing `address`, or `nil` when nothing is mapped there.
    func mapping(containing address: UInt64) -> CPUMapping?
    /// Whether every CPU page of `interval` is present (populated).
    func pagesPresent(_ interval: AddressInterval) -> Bool
    /// The mapping containing `address`, and whether `address` is in a heap of the C
    /// allocator (see `AllocatorHeaps`), from one look at the address space: asked once
    /// per range, when it is made.
    func mappingForNewRange(containing address: UInt64) -> (mapping: CPUMapping, allocatorHeap: Bool)?
}

extension CPUAddressSpace {
    /// An address space without a C allocator's heaps (a test's model of one).
    public func mappingForNewRange(containing address: UInt64) -> (mapping: CPUMapping, allocatorHeap: Bool)? {
        mapping(containing: address).map { ($0, false) }
    }
}
