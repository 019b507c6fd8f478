import ArgumentParser

/// The transforms of numeric options, for `@Option(parsing: .unconditional, transform:)`:
/// with unconditional parsing a negative number reaches the check instead of being taken
/// for an option ("Missing value"), and a value that overflows, is not a number or is out
/// of range is refused with the option's range.
enum NumberArgument {
    /// ArgumentParser names the option and the value before the message.
    static func integer<Value: FixedWidthInteger & Sendable>(_ range: ClosedRange<Value>) -> @Sendable (String) throws -> Value {
        { text in
            guard let value = Value(text), range.contains(value) else {
                throw ValidationError("expected an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
    }

    static func decimal(_ range: ClosedRange<Double>, unit: String) -> @Sendable (String) throws -> Double {
        { text in
            guard let value = Double(text), value.isFinite, range.contains(value) else {
                throw ValidationError("expected a number of \(unit) from \(range.lowerBound.formatted) to \(range.upperBound.formatted)")
            }
            return value
        }
    }
}

private extension Double {
    /// Whole numbers without ".0".
    var formatted: String { rounded() == self && abs(self) < 1e15 ? String(Int64(self)) : String(self) }
}
