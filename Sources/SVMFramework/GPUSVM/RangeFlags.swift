import Synchronization

/// Flags of a range (`drm_gpusvm_range_flags`), published as one atomic word so that a
/// reader sees a consistent set without the notifier lock.
public struct RangeFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The range may migrate to device memory.
    public static let migrateDevmem = RangeFlags(rawValue: 1 << 0)
    /// The CPU mapping under the range is gone; the garbage collector removes it.
    public static let unmapped = RangeFlags(rawValue: 1 << 1)
    /// Only part of the range was unmapped; the whole range is destroyed all the same.
    public static let partialUnmap = RangeFlags(rawValue: 1 << 2)
    /// The CPU mirror watches the range (registered with its userfaultfd).
    public static let mirrored = RangeFlags(rawValue: 1 << 3)
    /// The range is in a heap of the C allocator: used in place, never mirrored or migrated
    /// (see `AllocatorHeaps`).
    public static let allocatorHeap = RangeFlags(rawValue: 1 << 4)
}

/// Flags of the device pages of one range for one device (`drm_gpusvm_pages_flags`).
public struct DevicePagesFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The pages are mapped for the device (the addresses are valid).
    public static let hasDMAMapping = DevicePagesFlags(rawValue: 1 << 0)
    /// Some pages live in device memory.
    public static let hasDevmemPages = DevicePagesFlags(rawValue: 1 << 1)
    /// The CPU mapping is gone.
    public static let unmapped = DevicePagesFlags(rawValue: 1 << 2)
}

/// An option set stored in one atomic word: whole-word loads and read-modify-writes.
public final class AtomicFlags<Flags: OptionSet & Sendable>: Sendable where Flags.RawValue == UInt32 {
    private let word: Atomic<UInt32>

    public init(_ flags: Flags = []) { word = Atomic(flags.rawValue) }

    public func load() -> Flags { Flags(rawValue: word.load(ordering: .acquiring)) }

    public func insert(_ flags: Flags) { word.bitwiseOr(flags.rawValue, ordering: .acquiringAndReleasing) }

    public func remove(_ flags: Flags) { word.bitwiseAnd(~flags.rawValue, ordering: .acquiringAndReleasing) }

    public func store(_ flags: Flags) { word.store(flags.rawValue, ordering: .releasing) }
}
