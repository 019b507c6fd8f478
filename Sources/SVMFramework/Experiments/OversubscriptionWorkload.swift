import SVMPluginKit

/// A working set larger than device memory: the device adds 1 to every element in
/// `passes` sweeps, so ranges are evicted to system memory to make room and migrate again
/// on the next sweep; the CPU checks every element at the end.
public struct OversubscriptionWorkload: Workload {
    public var elements: Int
    public var passes: Int

    public init(workingSetBytes: UInt64, passes: Int = 2) {
        elements = max(1, Int(workingSetBytes / 4))
        self.passes = passes
    }

    public var summary: String {
        "\(passes) device sweeps adding 1 to each element of \(ByteCount.format(UInt64(elements) * 4)), more than device memory holds, checked on the CPU"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        let buffer = try driver.array(count: elements)
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        func initial(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: index) &* 747_796_405 ^ seed }
        driver.cpu("initialize", bytes: buffer.byteCount) {
            for index in 0..<elements { buffer.elements[index] = initial(index) }
        }
        for pass in 0..<passes {
            try driver.launchInChunks(
                "sweep (+1)", elements: elements, progress: Double(pass) / Double(passes), share: 0.9 / Double(passes)
            ) { start, count in
                .increment(destination: buffer.address(of: start), size: UInt64(count) * 4, addend: 1)
            }
        }
        let lost = driver.lostElements(of: buffer)
        let verification = driver.cpu("check", bytes: buffer.byteCount) {
            var verification = Verification()
            for index in 0..<elements {
                if lost[index] { verification.lost += 1; continue }
                verification.check(buffer.elements[index], initial(index) &+ UInt32(passes), "buffer[\(index)]")
            }
            return verification
        }
        driver.report(progress: 1)
        return verification
    }
}
