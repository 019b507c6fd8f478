import SVMPluginKit

/// A 1-D three-point stencil, `out[i] = in[i-1] + in[i] + in[i+1]` on 32-bit integers
/// (wrapping; zero outside the array), `iterations` times, the two arrays swapping roles
/// each time. With several devices each computes its shard, and reads one element of each
/// neighbour's shard: the halo exchange, which migrates the neighbours' boundary ranges
/// (or, with policy `peer`, reads them in place over the peer path). The CPU initializes
/// the input and checks every element of the result against its own computation.
///
/// Each iteration is two triads per shard (`a = b + 1·c`): `out = in[i-1] + in[i]` (with
/// `out[0] = in[0]` copied), then `out += in[i+1]` (but the last element).
public struct StencilWorkload: Workload {
    public var elements: Int
    public var iterations: Int

    /// Two arrays sharing `workingSetBytes`, a whole number of 1024 elements (at least 2048),
    /// so that no launch is empty.
    public init(workingSetBytes: UInt64, iterations: Int = 4) {
        elements = max(2048, Int(workingSetBytes / 8) / 1024 * 1024)
        self.iterations = iterations
    }

    public var summary: String {
        "3-point stencil out[i] = in[i-1] + in[i] + in[i+1] on 32-bit integers, two arrays of \(ByteCount.format(UInt64(elements) * 4)), \(iterations) iterations, shards exchanging halos, checked on the CPU"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        var arrays = (input: try driver.array(count: elements), output: try driver.array(count: elements))
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        func initial(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: index) &* 2_891_336_453 ^ seed }
        driver.cpu("initialize", bytes: arrays.input.byteCount) {
            for index in 0..<elements { arrays.input.elements[index] = initial(index) }
        }
        let last = elements - 1
        for iteration in 0..<iterations {
            let (input, output) = arrays
            let progress = Double(iteration) / Double(iterations)
            // out[i] = in[i-1] + in[i] for i >= 1; out[0] = in[0].
            try driver.launch("halo copy", .copy(destination: output.address(of: 0), source: input.address(of: 0), size: 4))
            try driver.launchInChunks("stencil left", elements: elements, progress: progress, share: 0.4 / Double(iterations)) { start, count in
                let from = max(start, 1)
                return .triad(a: output.address(of: from), b: input.address(of: from - 1), c: input.address(of: from),
                              size: UInt64(start + count - from) * 4, scalar: 1)
            }
            // out[i] += in[i+1] for i < last.
            try driver.launchInChunks("stencil right", elements: elements, progress: progress + 0.4 / Double(iterations), share: 0.4 / Double(iterations)) { start, count in
                let end = min(start + count, last)
                return .triad(a: output.address(of: start), b: output.address(of: start), c: input.address(of: start + 1),
                              size: UInt64(end - start) * 4, scalar: 1)
            }
            arrays = (output, input)
        }
        let result = arrays.input
        let lost = driver.lostElements(of: result)
        let verification = driver.cpu("check", bytes: result.byteCount) {
            // The CPU's own iterations, on plain memory.
            var current = (0..<elements).map(initial)
            var next = [UInt32](repeating: 0, count: elements)
            for _ in 0..<iterations {
                for index in 0..<elements {
                    let left = index > 0 ? current[index - 1] : 0
                    let right = index < last ? current[index + 1] : 0
                    next[index] = left &+ current[index] &+ right
                }
                swap(&current, &next)
            }
            var verification = Verification()
            for index in 0..<elements {
                if lost[index] { verification.lost += 1; continue }
                verification.check(result.elements[index], current[index], "out[\(index)]")
            }
            return verification
        }
        driver.report(progress: 1)
        return verification
    }
}
