import Foundation

/// Collects a timeline as Chrome trace events (the JSON format Perfetto's UI and
/// `chrome://tracing` open): one "process" per CPU, device and link, one "thread" per
/// activity lane in it, complete events (`ph: X`) and instants (`ph: i`) in microseconds.
public final class TraceRecorder {
    public struct Lane: Hashable, Sendable {
        public let process: Int
        public let thread: Int
    }

    private struct Event: Encodable {
        let name: String
        let cat: String
        let ph: String
        let ts: Double
        let dur: Double?
        let pid: Int
        let tid: Int
        let args: [String: String]?
        /// An instant's scope (`t`: its lane).
        var s: String? = nil
    }

    private var events: [Event] = []
    private var named: Set<String> = []

    public init() {}

    /// Names a process and one of its lanes (once each).
    public func name(_ lane: Lane, process: String, thread: String) {
        if named.insert("p\(lane.process)").inserted {
            events.append(Event(name: "process_name", cat: "", ph: "M", ts: 0, dur: nil, pid: lane.process, tid: 0, args: ["name": process]))
        }
        if named.insert("t\(lane.process).\(lane.thread)").inserted {
            events.append(Event(name: "thread_name", cat: "", ph: "M", ts: 0, dur: nil, pid: lane.process, tid: lane.thread, args: ["name": thread]))
        }
    }

    /// Something that ran from `start` to `end` (simulated nanoseconds) on `lane`.
    public func span(_ name: String, category: String, lane: Lane, start: UInt64, end: UInt64, args: [String: String] = [:]) {
        events.append(Event(
            name: name, cat: category, ph: "X", ts: Double(start) / 1000, dur: Double(end - start) / 1000,
            pid: lane.process, tid: lane.thread, args: args.isEmpty ? nil : args))
    }

    /// Something that happened at `time` on `lane` (a device reset).
    public func instant(_ name: String, category: String, lane: Lane, at time: UInt64, args: [String: String] = [:]) {
        events.append(Event(
            name: name, cat: category, ph: "i", ts: Double(time) / 1000, dur: nil,
            pid: lane.process, tid: lane.thread, args: args.isEmpty ? nil : args, s: "t"))
    }

    public var eventCount: Int { events.count }

    /// The trace as JSON: `{"traceEvents": [...], "displayTimeUnit": "ns"}`.
    public func json() throws -> Data {
        struct File: Encodable {
            let traceEvents: [Event]
            let displayTimeUnit: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(File(traceEvents: events, displayTimeUnit: "ns"))
    }
}
