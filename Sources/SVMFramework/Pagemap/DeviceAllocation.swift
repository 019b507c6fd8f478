/// Device memory backing one range (`drm_pagemap_devmem`): a block of one pagemap.
public struct DeviceAllocation: Sendable, Hashable {
    /// The pagemap the block belongs to: its owner, found without a search.
    public let pagemap: SVMPagemap
    public let offset: UInt64
    public let size: UInt64
    /// Until when (``monotonicNanoseconds()``) CPU faults leave the data in device memory:
    /// the timeslice the xe driver grants device atomics (5 ms), so that a device makes
    /// progress before the CPU takes the range back. 0: no timeslice. Nanoseconds, not a
    /// `ContinuousClock.Instant?`: that type's layout is hidden by the standard library, which
    /// made every copy and comparison of a residency go through runtime calls (2,000
    /// instructions per device fault).
    public private(set) var heldUntil: Int64 = 0

    public init(pagemap: SVMPagemap, offset: UInt64, size: UInt64) {
        self.pagemap = pagemap
        self.offset = offset
        self.size = size
    }

    /// The device whose memory this is.
    public var deviceID: UInt64 { pagemap.deviceID }

    /// Holds the data in device memory for `timeslice` from now; `nil`: no timeslice.
    public mutating func hold(for timeslice: Duration?) {
        guard let timeslice else { heldUntil = 0; return }
        heldUntil = monotonicNanoseconds() + timeslice.wholeNanoseconds()
    }

    /// Whether the timeslice still runs.
    public var isHeld: Bool { heldUntil != 0 && monotonicNanoseconds() < heldUntil }

    /// Where the block's bytes are in this process, when device memory is host memory.
    var hostAddress: UInt64? { pagemap.hostMemory.map { $0.start + offset } }

    /// The block's bytes in this process, when device memory is host memory.
    var hostInterval: AddressInterval? { hostAddress.map { AddressInterval(start: $0, end: $0 + size) } }

    public static func == (a: DeviceAllocation, b: DeviceAllocation) -> Bool {
        a.pagemap === b.pagemap && a.offset == b.offset && a.size == b.size && a.heldUntil == b.heldUntil
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(pagemap))
        hasher.combine(offset)
        hasher.combine(size)
    }
}
