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
    /// What the allocator-heap check needs of the area the mapping was found in, kept so
    /// that a new range's check does not ask the kernel for the area again.
    public var heapCandidate: HeapCandidate

    /// Whether an area can be a heap of the C allocator (see `AllocatorHeaps`).
    public enum HeapCandidate: Hashable, Sendable {
        /// Not a heap: shared, file-backed or named memory.
        case no
        /// The `brk` heap (`[heap]`).
        case brkHeap
        /// Unnamed private anonymous memory starting at `areaStart` (before any cut to the
        /// program's part): a heap of another arena if a heap header says so.
        case unnamedAnonymous(areaStart: UInt64)
    }

    public init(
        interval: AddressInterval, readable: Bool, writable: Bool, shared: Bool, anonymous: Bool,
        heapCandidate: HeapCandidate = .no
    ) {
        self.interval = interval
        self.readable = readable
        self.writable = writable
        self.shared = shared
        self.anonymous = anonymous
        self.heapCandidate = heapCandidate
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
    /// Whether `address`, in `mapping` (this space's answer for it), is in a heap of the C
    /// allocator (see `AllocatorHeaps`). Asked once per range, when it is made.
    func isAllocatorHeap(_ address: UInt64, in mapping: CPUMapping) -> Bool
}

extension CPUAddressSpace {
    /// An address space without a C allocator's heaps (a test's model of one).
    public func isAllocatorHeap(_ address: UInt64, in mapping: CPUMapping) -> Bool { false }
}
