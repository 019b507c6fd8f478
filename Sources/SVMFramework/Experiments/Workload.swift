/// A built-in workload: it allocates its arrays, runs kernels and CPU phases through the
/// driver, and checks every value on the CPU at the end.
public protocol Workload {
    /// What it does, in one sentence a report prints.
    var summary: String { get }
    /// Runs to the end; the check of its results.
    func run(_ driver: ExperimentDriver) throws -> Verification
}

/// The CPU's check of a workload's results: verified only if every value was checked and
/// right.
public struct Verification: Sendable, Hashable, Codable {
    public var checked: Int
    public var wrong: Int
    /// Values not checked because their data was lost (a device reset), or never computed
    /// (a kernel whose inputs were lost did not run): see ``ExperimentDriver/lostElements(of:)``.
    public var lost: Int
    /// The first wrong value, described.
    public var firstWrong: String?

    public var verified: Bool { wrong == 0 && lost == 0 && checked > 0 }

    public init(checked: Int = 0, wrong: Int = 0, lost: Int = 0, firstWrong: String? = nil) {
        self.checked = checked
        self.wrong = wrong
        self.lost = lost
        self.firstWrong = firstWrong
    }

    /// Counts one value.
    mutating func check(_ got: UInt32, _ expected: UInt32, _ what: @autoclosure () -> String) {
        checked += 1
        if got != expected {
            wrong += 1
            if firstWrong == nil { firstWrong = "\(what()): \(got), expected \(expected)" }
        }
    }
}

/// The built-in workloads by name.
public enum WorkloadKind: String, Sendable, Hashable, Codable, CaseIterable {
    case stream
    case gather
    case pingPong = "ping-pong"
    case oversubscription
    case stencil
    case matmul
}
