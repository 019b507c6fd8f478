/// A half-open interval of virtual addresses, `[start, end)`.
public struct AddressInterval: Hashable, Sendable, CustomStringConvertible {
    public let start: UInt64
    public let end: UInt64

    public init(start: UInt64, end: UInt64) {
        precondition(start < end, "empty interval [\(start), \(end))")
        self.start = start
        self.end = end
    }

    public var size: UInt64 { end - start }

    public func contains(_ address: UInt64) -> Bool { start <= address && address < end }

    public func contains(_ other: AddressInterval) -> Bool { start <= other.start && other.end <= end }

    public func overlaps(_ other: AddressInterval) -> Bool { start < other.end && other.start < end }

    /// The bytes in both intervals, or `nil` when they do not overlap.
    public func intersection(_ other: AddressInterval) -> AddressInterval? {
        overlaps(other) ? AddressInterval(start: max(start, other.start), end: min(end, other.end)) : nil
    }

    /// The parts of this interval outside every one of `others` (in any order, overlapping
    /// or not), in address order.
    public func subtracting(_ others: [AddressInterval]) -> [AddressInterval] {
        var pieces: [AddressInterval] = []
        var cursor = start
        for other in others.sorted(by: { $0.start < $1.start }) where other.overlaps(self) {
            if cursor < other.start { pieces.append(AddressInterval(start: cursor, end: other.start)) }
            cursor = max(cursor, other.end)
        }
        if cursor < end { pieces.append(AddressInterval(start: cursor, end: end)) }
        return pieces
    }

    public var description: String {
        "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16)))"
    }
}
