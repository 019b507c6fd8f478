import CSVMPlatform
import Glibc
import SVMPluginKit
import Synchronization

/// A record of the steps the SVM layer took (migrations, page placements, zero fills,
/// binds, address-space events), for finding out how a byte came to be wrong. Off unless
/// ``enable()`` was called; then every step costs a lock and an allocation.
public final class SVMTrace: Sendable {
    public struct Entry: Sendable, CustomStringConvertible {
        /// Monotonic nanoseconds.
        public let time: UInt64
        /// The kernel's id of the thread that took the step.
        public let thread: Int32
        public let step: String
        public let interval: AddressInterval

        public var description: String {
            "\(time) t\(thread) [\(hex(interval.start)), \(hex(interval.end))) \(step)"
        }
    }

    private let enabled = Atomic<Bool>(false)
    private let entries = Locked<[Entry]>([])

    public init() {}

    public func enable() { enabled.store(true, ordering: .releasing) }

    /// Records a step on `interval`; `step` is evaluated only when tracing is on.
    func record(_ step: @autoclosure () -> String, _ interval: AddressInterval) {
        guard enabled.load(ordering: .relaxed) else { return }
        let entry = Entry(
            time: UInt64(monotonicNanoseconds()), thread: svm_thread_id(), step: step(),
            interval: interval)
        entries.withLock { $0.append(entry) }
    }

    /// Every step, in order.
    public var allSteps: [Entry] { entries.withLock { $0 } }

    /// The steps that touched `address`, in order.
    public func steps(touching address: UInt64) -> [Entry] {
        entries.withLock { $0.filter { $0.interval.contains(address) } }
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
