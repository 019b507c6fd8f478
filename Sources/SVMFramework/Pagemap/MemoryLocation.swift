/// Where the data of a range can live: system memory (the CPU pages at the range's
/// addresses) or one device's memory, its pagemap.
public enum MemoryLocation: Sendable, Equatable, CustomStringConvertible {
    case system
    case device(SVMPagemap)

    public static func == (a: MemoryLocation, b: MemoryLocation) -> Bool {
        switch (a, b) {
        case (.system, .system): true
        case (.device(let x), .device(let y)): x === y
        default: false
        }
    }

    /// The location as the activity log and statistics name it.
    public var id: SVMActivityLog.Location {
        switch self {
        case .system: .system
        case .device(let pagemap): .device(pagemap.deviceID)
        }
    }

    public var description: String { id.description }

    /// Whether the location is a device memory being wiped by a reset.
    public var isResetting: Bool {
        if case .device(let pagemap) = self { pagemap.isResetting } else { false }
    }
}
