@testable import SVMFramework
import Testing

/// How `bench fault` times its floors against its faults (the numbers themselves are not
/// judged: the machine is noisy).
@Suite("Fault benchmark floors")
struct FaultBenchmarkTests {
    @Test("Floors and faults alternate in blocks of eight, each index once, results in index order")
    func alternation() {
        var calls: [String] = []
        let (floors, measured) = FaultBenchmark.alternating(count: 20, first: { calls.append("f\($0)"); return 1000 + $0 }) {
            calls.append("m\($0)")
            return 2000 + $0
        }
        let block = FaultBenchmark.alternationBlock
        #expect(block == 8)
        var expected: [String] = []
        for start in stride(from: 0, to: 20, by: block) {
            let chunks = start..<min(start + block, 20)
            expected += chunks.map { "f\($0)" } + chunks.map { "m\($0)" }
        }
        #expect(calls == expected)
        #expect(floors == (0..<20).map { 1000 + $0 } && measured == (0..<20).map { 2000 + $0 })
    }

    @Test("A prepared move floor moves each chunk once, timed, and the bytes arrive")
    func moveFloorSession() throws {
        let session = try MoveFloor(bytes: 4096, count: 4).prepare()
        let times = try (0..<4).map { try session.time(chunk: $0) }
        #expect(times.allSatisfy { $0 > 0 })
        try session.verify()
        // A chunk moved already has nothing left at its source: a second move cannot complete.
        #expect(throws: BenchmarkError.self) { _ = try session.time(chunk: 0) }
    }

    @Test("A prepared CPU fault floor serves each touch with one move")
    func cpuFaultFloorSession() throws {
        let session = try CPUFaultFloor(bytes: 4096, count: 3).prepare()
        let times = (0..<3).map { session.time(chunk: $0) }
        #expect(times.allSatisfy { $0 > 0 })
        try session.finish()
    }
}
