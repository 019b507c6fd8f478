import Glibc

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of the trace, of the handler's work for the
/// watchdog (``CPUMirror/handlerWork``) and of the benchmarks' timings.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
