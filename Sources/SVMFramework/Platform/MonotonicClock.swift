import Glibc

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of the trace, of the handler's work for the
/// watchdog (``CPUMirror/handlerWork``) and of the benchmarks' timings.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

extension Duration {
    /// The duration in whole nanoseconds (the unit of futex and poll timeouts and of
    /// ``monotonicNanoseconds()``), truncated, or rounded up so that a wait never ends
    /// early; saturating at `Int64`'s limits.
    func wholeNanoseconds(roundingUp: Bool = false) -> Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, carry) = product.addingReportingOverflow((attoseconds + (roundingUp ? 999_999_999 : 0)) / 1_000_000_000)
        return carry ? .max : sum
    }
}
