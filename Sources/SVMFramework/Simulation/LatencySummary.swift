import Histogram

/// Percentiles of a latency histogram (HdrHistogram, three significant digits), in
/// simulated nanoseconds.
public struct LatencySummary: Sendable, Hashable, Codable {
    public var count: UInt64
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var max: UInt64

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        guard count > 0 else {
            (p50, p90, p99, max) = (0, 0, 0, 0)
            return
        }
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        max = histogram.max
    }
}
