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

    public var description: String {
        "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16)))"
    }
}
