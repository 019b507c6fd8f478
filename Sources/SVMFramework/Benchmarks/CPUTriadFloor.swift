/// The floor of the stream experiment on the host: what the CPU alone needs to bring the
/// same bytes into being and touch them once, so that a simulation's wall time can be read
/// as a multiple of it.
///
/// One run maps the three arrays of ``StreamWorkload`` for the working set (``SVMArray``s,
/// mapped as the experiment maps them), initializes `b` and `c` as the workload does (their
/// first touch: the kernel's page faults and zeroing), computes `a = b + s·c` once (the
/// first touch of `a`) and unmaps the arrays (as the experiment's arrays are before its
/// wall time stops). No SVM context, no device, no check pass.
public struct CPUTriadFloor: Sendable {
    /// Elements per array: the stream workload's for the same working set.
    public let elements: Int
    /// The workload's scalar.
    public let scalar: UInt32

    public init(workingSetBytes: UInt64) {
        let workload = StreamWorkload(workingSetBytes: workingSetBytes)
        elements = workload.elements
        scalar = workload.scalar
    }

    /// The wall-clock seconds of one run.
    ///
    /// - Throws: ``ExperimentError/outOfMemory(_:)`` when an array cannot be mapped.
    public func seconds() throws(ExperimentError) -> Double {
        let started = ContinuousClock.now
        try run()
        let wall = started.duration(to: .now)
        return Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
    }

    /// One run; the arrays are unmapped when it returns.
    private func run() throws(ExperimentError) {
        let (a, b, c) = (try SVMArray(count: elements), try SVMArray(count: elements), try SVMArray(count: elements))
        // The arrays' pointers are used past the arrays' last use: keep them mapped until
        // the end.
        withExtendedLifetime((a, b, c)) {
            let (aElements, bElements, cElements) = (a.elements, b.elements, c.elements)
            // The workload's initialization, with a fixed seed (the values do not change
            // the time).
            let seed: UInt32 = 1
            for index in 0..<elements {
                bElements[index] = UInt32(truncatingIfNeeded: index) &* 2_654_435_761 &+ seed
                cElements[index] = UInt32(truncatingIfNeeded: index) ^ seed
            }
            for index in 0..<elements {
                aElements[index] = bElements[index] &+ scalar &* cElements[index]
            }
            // The last element proves the triad ran to the end (and keeps it from being
            // optimized away).
            let last = elements - 1
            let expected = (UInt32(truncatingIfNeeded: last) &* 2_654_435_761 &+ seed)
                &+ scalar &* (UInt32(truncatingIfNeeded: last) ^ seed)
            precondition(aElements[last] == expected, "the CPU triad computed a[\(last)] = \(aElements[last]), not \(expected)")
        }
    }
}
