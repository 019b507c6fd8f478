import SVMPluginKit

/// A CPU↔device producer/consumer: each round the device adds 1 to every element, then the
/// CPU checks the result and adds 1 itself. The data migrates to the device and back
/// every round: the worst case for fault-driven migration. With several devices, each in
/// turn adds 1 before the CPU does: the data also travels from device to device, directly
/// where they have a peer path.
public struct PingPongWorkload: Workload {
    public var elements: Int
    public var rounds: Int

    public init(workingSetBytes: UInt64, rounds: Int = 4) {
        elements = max(1, Int(workingSetBytes / 4))
        self.rounds = rounds
    }

    public var summary: String {
        "CPU↔device ping-pong: \(rounds) rounds of each device +1 in turn, then a CPU check and +1, over \(ByteCount.format(UInt64(elements) * 4))"
    }

    public func run(_ driver: ExperimentDriver) throws -> Verification {
        let buffer = try driver.array(count: elements)
        let seed = UInt32(truncatingIfNeeded: driver.random.next())
        func initial(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: index) ^ seed }
        driver.cpu("produce", bytes: buffer.byteCount) {
            for index in 0..<elements { buffer.elements[index] = initial(index) }
        }
        var verification = Verification()
        // Each round adds 1 per device and 1 on the CPU.
        let perRound = driver.devices.count + 1
        for round in 0..<rounds {
            let share = 0.5 / Double(rounds * driver.devices.count)
            for (index, device) in driver.devices.enumerated() {
                try driver.launchInChunks(
                    "consume (+1)", elements: elements, progress: Double(round) / Double(rounds) + Double(index) * share, share: share,
                    on: device
                ) { start, count in
                    .increment(destination: buffer.address(of: start), size: UInt64(count) * 4, addend: 1)
                }
            }
            let lost = driver.lostElements(of: buffer)
            driver.cpu("check, produce (+1)", bytes: 2 * buffer.byteCount) {
                let expected = UInt32(perRound * round + perRound - 1)
                for index in 0..<elements {
                    // Counted once, at the end.
                    if lost[index] { continue }
                    verification.check(buffer.elements[index], initial(index) &+ expected, "round \(round): buffer[\(index)]")
                    buffer.elements[index] &+= 1
                }
            }
            driver.report(progress: Double(round + 1) / Double(rounds))
        }
        let lost = driver.lostElements(of: buffer)
        driver.cpu("check", bytes: buffer.byteCount) {
            for index in 0..<elements {
                if lost[index] { verification.lost += 1; continue }
                verification.check(buffer.elements[index], initial(index) &+ UInt32(perRound * rounds), "final buffer[\(index)]")
            }
        }
        return verification
    }
}
