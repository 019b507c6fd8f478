/// A change of the CPU address space that happened to a range while a migration owned its
/// data: the migration applies it when it puts data back into CPU pages.
public enum AddressSpaceChange: Sendable, Hashable {
    /// The pages of the interval were unmapped or discarded: their data is gone.
    case discarded(AddressInterval)
    /// `mremap` moved `[from, from + length)` to `to`.
    case remapped(from: UInt64, to: UInt64, length: UInt64)

    /// Where the byte at `address` lives after the change, or `nil` when it is gone.
    func destination(of address: UInt64) -> UInt64? {
        switch self {
        case .discarded(let interval): interval.contains(address) ? nil : address
        case .remapped(let from, let to, let length):
            (from..<from + length).contains(address) ? to + (address - from) : address
        }
    }
}

extension [AddressSpaceChange] {
    /// Where the byte at `address` lives after all the changes, in order; `nil` when gone.
    func destination(of address: UInt64) -> UInt64? {
        reduce(Optional(address)) { current, change in current.flatMap { change.destination(of: $0) } }
    }
}
