import SVMPluginKit

/// STREAM's triad, `a = b + s·c`, on 32-bit integers (wrapping, so the CPU's check is
/// exact): the CPU initializes `b` and `c`, the device runs the triad `iterations` times
/// (the first migrates everything to device memory, the others run from it), and the CPU
/// checks every element of `a`, which brings all three arrays back.
public struct StreamWorkload: Workload {
    public var elements: Int
    public var iterations: Int
    public var scalar: UInt32 = 3

    /// Three arrays sharing `workingSetBytes`.
    public init(workingSetBytes: UInt64, iterations: Int = 2) {
        elements = max(1, Int(workingSetBytes / 12))
        self.iterations = iterations
    }

    public var summary: String {
        "STREAM triad a = b + \(scalar)·c on 32-bit integers, three arrays of \(ByteCount.format(UInt64(elements) * 4)), \(iterations) iteration(s) on the device, checked on the CPU"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        let (a, b, c) = (try driver.array(count: elements), try driver.array(count: elements), try driver.array(count: elements))
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        driver.cpu("initialize b, c", bytes: 2 * b.byteCount) {
            for index in 0..<elements {
                b.elements[index] = UInt32(truncatingIfNeeded: index) &* 2_654_435_761 &+ seed
                c.elements[index] = UInt32(truncatingIfNeeded: index) ^ seed
            }
        }
        for iteration in 0..<iterations {
            try driver.launchInChunks(
                "triad", elements: elements, progress: Double(iteration) / Double(iterations + 1),
                share: 1 / Double(iterations + 1)
            ) { start, count in
                .triad(a: a.address(of: start), b: b.address(of: start), c: c.address(of: start), size: UInt64(count) * 4, scalar: scalar)
            }
        }
        let lost = [a, b, c].map(driver.lostElements(of:))
        let verification = driver.cpu("check a", bytes: 3 * a.byteCount) {
            var verification = Verification()
            for index in 0..<elements {
                if lost[0][index] || lost[1][index] || lost[2][index] { verification.lost += 1; continue }
                verification.check(a.elements[index], b.elements[index] &+ scalar &* c.elements[index], "a[\(index)]")
            }
            return verification
        }
        driver.report(progress: 1)
        return verification
    }
}
