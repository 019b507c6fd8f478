/// A fixed-size, aligned interval of the address space (`drm_gpusvm_notifier`) with the
/// ranges created inside it and the sequence number its invalidations bump.
///
/// Its range tree is protected by the SVM space's lock; `sequence` is atomic.
public final class Notifier: @unchecked Sendable {
    public let interval: AddressInterval
    public let sequence = NotifierSequence()
    /// Protected by the owning SVM space's locks (as its `notifiers`, and unchecked by the
    /// runtime for the same reason).
    @exclusivity(unchecked) public var ranges = IntervalTree<SVMRange>()

    public init(interval: AddressInterval) { self.interval = interval }

    /// The notifier interval of `size` bytes that contains `address`.
    public static func interval(containing address: UInt64, size: UInt64) -> AddressInterval {
        let start = address & ~(size - 1)
        return AddressInterval(start: start, end: start &+ size == 0 ? UInt64.max : start + size)
    }
}
