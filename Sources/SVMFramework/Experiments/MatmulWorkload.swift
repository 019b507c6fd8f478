import SVMPluginKit

/// A sharded matrix multiply, `C = A × B` on 32-bit integers (wrapping), row-major: A is
/// M×K, B is K×N, C is M×N. With several devices each computes a shard of C's rows, in
/// whole 2 MiB ranges, and reads all of B: the shared input, whose ranges migrate from
/// device to device (or, with policy `peer`, are read in place over the peer path). The CPU
/// initializes A and B from the seed, zeroes C, and checks every element of C against its
/// own product.
///
/// Built from triads (`a = b + scalar·c`): row `i` of C accumulates `C[i,:] += A[i,k]·B[k,:]`
/// for each `k`, one launch per `(i, k)` over the N elements of the row. The scalar `A[i,k]`
/// is a launch argument: the CPU reads A when it builds the launches, so A stays in system
/// memory and no device reads it.
public struct MatmulWorkload: Workload {
    /// M: rows of A and C.
    public var rows: Int
    /// K: columns of A, rows of B; the launches per row of C.
    public var depth: Int
    /// N: columns of B and C, a power of two of at least 1024 elements, so that a 2 MiB
    /// range holds whole rows or a row whole ranges.
    public var columns: Int

    /// Shapes from `workingSetBytes`: B (`depth` rows) about a quarter of it, N the power of
    /// two nearest that; C's rows the rest (M between 32 and 80 but for tiny working sets),
    /// so M·K stays at most 1280 launches (768 at 16 and 64 MiB).
    public init(workingSetBytes: UInt64, depth: Int = 16) {
        precondition(depth > 0)
        self.depth = depth
        let target = max(1, workingSetBytes / UInt64(16 * depth))
        let below: UInt64 = 1 << (63 - target.leadingZeroBitCount)
        columns = max(1024, Int(target >= below + below / 2 ? 2 * below : below))
        let rowBytes = UInt64(columns) * 4
        rows = max(1, Int((workingSetBytes - min(workingSetBytes, UInt64(depth) * rowBytes)) / rowBytes))
    }

    public var summary: String {
        "matrix multiply C = A×B on 32-bit integers, A \(rows)×\(depth), B \(depth)×\(columns) (\(ByteCount.format(UInt64(depth * columns) * 4))), "
            + "C \(rows)×\(columns) (\(ByteCount.format(UInt64(rows * columns) * 4))): one triad C[i,:] += A[i,k]·B[k,:] per row and k (\(rows * depth) launches, "
            + "A's scalars read by the CPU), each device computing whole 2 MiB ranges of C's rows and reading all of B, checked on the CPU"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        precondition(columns >= 1024 && columns.nonzeroBitCount == 1, "\(columns) columns: a power of two of at least 1024")
        let a = try driver.array(count: rows * depth)
        let b = try driver.array(count: depth * columns)
        let c = try driver.array(count: rows * columns)
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        func initialA(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: index) &* 2_654_435_761 ^ seed }
        func initialB(_ index: Int) -> UInt32 { (UInt32(truncatingIfNeeded: index) ^ seed) &* 2_246_822_519 }
        driver.cpu("initialize A, B, zero C", bytes: a.byteCount + b.byteCount + c.byteCount) {
            for index in 0..<a.count { a.elements[index] = initialA(index) }
            for index in 0..<b.count { b.elements[index] = initialB(index) }
            // Fresh anonymous memory is zero already; written, C starts in system memory like the inputs.
            c.elements.update(repeating: 0)
        }
        // Launch arguments, read once; A never leaves system memory.
        let scalars = driver.cpu("read A", bytes: a.byteCount) { Array(a.elements) }
        // Shards of whole 2 MiB ranges of rows, so that no row and no range is split between devices.
        let rowsPerRange = max(1, ExperimentDriver.shardAlignment / columns)
        var done = 0
        for (device, shard) in driver.shards(of: rows, alignment: rowsPerRange) {
            for row in shard {
                for k in 0..<depth {
                    // A row longer than a launch (working sets of gigabytes) in several.
                    try driver.launchInChunks(
                        "C[i,:] += A[i,k]·B[k,:]", elements: columns, progress: 0.9 * Double(done) / Double(rows), on: device
                    ) { start, count in
                        let destination = c.address(of: row * columns + start)
                        return .triad(a: destination, b: destination, c: b.address(of: k * columns + start), size: UInt64(count) * 4,
                                      scalar: scalars[row * depth + k])
                    }
                }
                done += 1
                driver.report(progress: 0.9 * Double(done) / Double(rows))
            }
        }
        let verification = driver.cpu("check C", bytes: c.byteCount) {
            // C's ranges still in device memory hold results that are not lost: with copies
            // back failing, reading them would raise SIGBUS before they count as lost.
            driver.bringHome(c)
            let lost = driver.lostElements(of: c)
            // The CPU's own product, on plain memory, a row of C at a time.
            let plainB = (0..<b.count).map(initialB)
            var expected = [UInt32](repeating: 0, count: columns)
            var verification = Verification()
            for row in 0..<rows {
                expected.withUnsafeMutableBufferPointer { expected in
                    plainB.withUnsafeBufferPointer { plainB in
                        expected.update(repeating: 0)
                        for k in 0..<depth {
                            let scalar = initialA(row * depth + k)
                            let base = k * columns
                            for column in 0..<columns { expected[column] &+= scalar &* plainB[base + column] }
                        }
                    }
                }
                for column in 0..<columns {
                    let index = row * columns + column
                    if lost[index] { verification.lost += 1; continue }
                    verification.check(c.elements[index], expected[column], "C[\(row), \(column)]")
                }
            }
            return verification
        }
        driver.report(progress: 1)
        return verification
    }
}
