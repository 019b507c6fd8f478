/// A device's side of invalidation: what the SVM space calls to take a range away from a
/// device's page tables.
public protocol SVMDeviceMapper: AnyObject, Sendable {
    /// The device's id in this SVM space.
    var deviceID: UInt64 { get }

    /// Removes every page-table entry of `interval` and invalidates the device's TLB, so that
    /// the next access faults. Called with the notifier lock held for writing: it must not
    /// touch managed memory or take a lock the fault path holds.
    func zap(_ interval: AddressInterval)
}
