/// Chooses the interval of a new range for a device fault: the largest configured chunk
/// that is aligned, lies inside the CPU mapping and the notifier, overlaps no existing range,
/// and — when it is no larger than the check-pages threshold — has all its CPU pages present.
/// The `drm_gpusvm_range_chunk_size` analog.
public enum RangeChunkSelector {
    /// The chosen interval, or `nil` when not even a 4 KiB chunk fits (the address is
    /// outside the mapping, or already inside a range).
    ///
    /// - Parameters:
    ///   - overlapsExisting: whether a candidate overlaps a range of the notifier.
    ///   - pagesPresent: whether every CPU page of a candidate is present (resident).
    public static func select(
        faultAddress address: UInt64, mapping: AddressInterval, notifier: AddressInterval,
        configuration: SVMConfiguration,
        overlapsExisting: (AddressInterval) -> Bool,
        pagesPresent: (AddressInterval) -> Bool
    ) -> AddressInterval? {
        guard mapping.contains(address), notifier.contains(address) else { return nil }
        for (index, size) in configuration.chunkSizes.enumerated() {
            let start = address & ~(size - 1)
            let candidate = AddressInterval(start: start, end: start + size)
            guard mapping.contains(candidate), notifier.contains(candidate) else { continue }
            guard !overlapsExisting(candidate) else { continue }
            let isLast = index == configuration.chunkSizes.count - 1
            if !isLast, size <= configuration.checkPagesThreshold, !pagesPresent(candidate) {
                continue
            }
            return candidate
        }
        return nil
    }
}
