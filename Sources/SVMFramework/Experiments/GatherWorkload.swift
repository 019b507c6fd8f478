import SVMPluginKit

/// A random gather, `out[i] = table[index[i]]`: the CPU fills a table and random indices
/// (from the experiment's seed), the device gathers, the CPU checks every element. Each
/// element is its own device access, so TLB reach and fault batching show.
public struct GatherWorkload: Workload {
    public var tableElements: Int
    public var elements: Int

    /// Half of `workingSetBytes` for the table, a quarter each for the indices and `out`.
    public init(workingSetBytes: UInt64) {
        tableElements = max(1, Int(workingSetBytes / 8))
        elements = max(1, Int(workingSetBytes / 16))
    }

    public var summary: String {
        "random gather out[i] = table[index[i]] of \(elements) elements from a \(ByteCount.format(UInt64(tableElements) * 4)) table, checked on the CPU"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        let table = try driver.array(count: tableElements)
        let indices = try driver.array(count: elements)
        let out = try driver.array(count: elements)
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        driver.cpu("initialize table", bytes: table.byteCount) {
            for index in 0..<tableElements { table.elements[index] = UInt32(truncatingIfNeeded: index) &* 2_246_822_519 ^ seed }
        }
        var random = driver.random
        driver.cpu("draw indices", bytes: indices.byteCount) {
            for index in 0..<elements { indices.elements[index] = UInt32(random.next() % UInt64(tableElements)) }
        }
        driver.random = random
        try driver.launchInChunks("gather", elements: elements, share: 0.9, reads: [table]) { start, count in
            .gather(destination: out.address(of: start), indices: indices.address(of: start), table: table.address, size: UInt64(count) * 4)
        }
        let (lostOut, lostIndices, lostTable) = (driver.lostElements(of: out), driver.lostElements(of: indices), driver.lostElements(of: table))
        let verification = driver.cpu("check out", bytes: out.byteCount * 3) {
            var verification = Verification()
            for index in 0..<elements {
                if lostOut[index] || lostIndices[index] || lostTable[Int(indices.elements[index])] {
                    verification.lost += 1
                    continue
                }
                verification.check(out.elements[index], table.elements[Int(indices.elements[index])], "out[\(index)]")
            }
            return verification
        }
        driver.report(progress: 1)
        return verification
    }
}
