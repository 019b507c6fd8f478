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
        for chunk in 0..<4 { try session.roundTrip(chunk: chunk, there: true) }
        // Half a round trip leaves the chunk at the destination: timing its move now fails.
        #expect(throws: BenchmarkError.self) { _ = try session.time(chunk: 0) }
        for chunk in 0..<4 { try session.roundTrip(chunk: chunk, there: false) }
        let times = try (0..<4).map { try session.time(chunk: $0) }
        #expect(times.allSatisfy { $0 > 0 })
        try session.verify()
        // A chunk moved already has nothing left at its source: a second move cannot complete.
        #expect(throws: BenchmarkError.self) { _ = try session.time(chunk: 0) }
    }

    @Test("A CPU fault floor after a move floor moves that floor's chunks on, each touch served by one move")
    func cpuFaultFloorSession() throws {
        let moveFloor = try MoveFloor(bytes: 4096, count: 3).prepare()
        try moveFloor.roundTripEveryChunk()
        for chunk in 0..<3 { _ = try moveFloor.time(chunk: chunk) }
        try moveFloor.verify()
        let session = try CPUFaultFloor(bytes: 4096, count: 3).prepare(after: moveFloor)
        // The chunks the move floor left at its destination are the source, on its userfaultfd.
        #expect(session.areas.source === moveFloor.areas.destination)
        #expect(session.areas.uffd === moveFloor.areas.uffd)
        #expect(session.areas.destination !== moveFloor.areas.source && session.areas.destination !== moveFloor.areas.destination)
        // Each touch reads the pattern (BenchmarkBuffer.touch checks it) and is served by a move.
        let times = (0..<3).map { session.time(chunk: $0) }
        #expect(times.allSatisfy { $0 > 0 })
        try session.finish()
    }
}
