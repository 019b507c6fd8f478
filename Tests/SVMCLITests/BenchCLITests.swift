import Foundation
import SVMFramework
import SVMTestSupport
import Testing

/// End-to-end: `svm-cli bench fault` measures and prints; its numbers are not judged here
/// (the machine is noisy), only that each one was measured.
@Suite("svm-cli bench")
struct BenchCLITests {
    struct Report: Decodable {
        struct Chunk: Decodable {
            let chunkBytes: UInt64
            let deviceFaultNs: Int
            let memcpyNs: Int
            let deviceFaultOverheadNs: Int
            let memcpyColdNs: Int
            let deviceFaultOverheadColdNs: Int
            let cpuFaultNs: Int
            let memcpyFreshNs: Int
            let cpuFaultToFreshMemcpy: Double
            let moveFloorNs: Int
            let deviceFaultToMoveFloor: Double
            let cpuFaultToMoveFloor: Double
            let cpuFaultFloorNs: Int
            let cpuFaultToCPUFaultFloor: Double
        }
        let device: String
        let iterations: Int
        let chunks: [Chunk]
        let oneTwoMiBFaultNs: Int
        let fiveHundredTwelve4KiBFaultsNs: Int
        struct DeviceToDevice: Decodable {
            let devices: [String]
            let peerProtocol: String
            let directNs: Int
            let throughSystemNs: Int
            let moveFloorNs: Int
            let directToMoveFloor: Double
            let throughSystemToMoveFloor: Double
        }
        let deviceToDevice: DeviceToDevice?
        let cpu: Int?
        let statistics: [String: Int]
    }

    @Test("bench fault --json reports 4K, 64K and 2M faults against memcpy")
    func faultJSON() throws {
        let result = try ProcessRunner.svmCLI(["bench", "fault", "--json", "--iterations", "4"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.standardOutput.utf8))
        #expect(report.chunks.map(\.chunkBytes) == [4096, 65536, 2 << 20])
        for chunk in report.chunks {
            #expect(chunk.deviceFaultNs > 0 && chunk.memcpyNs > 0 && chunk.cpuFaultNs > 0 && chunk.memcpyFreshNs > 0)
            #expect(chunk.memcpyColdNs > 0 && chunk.deviceFaultOverheadColdNs == chunk.deviceFaultNs - chunk.memcpyColdNs)
            // The floor was measured in this run, and the ratios are taken against it.
            #expect(chunk.moveFloorNs > 0)
            #expect(chunk.deviceFaultToMoveFloor > 0 && chunk.cpuFaultToMoveFloor > 0)
            #expect(abs(chunk.deviceFaultToMoveFloor - Double(chunk.deviceFaultNs) / Double(chunk.moveFloorNs)) < 1e-9)
            #expect(abs(chunk.cpuFaultToMoveFloor - Double(chunk.cpuFaultNs) / Double(chunk.moveFloorNs)) < 1e-9)
            #expect(chunk.cpuFaultFloorNs > 0)
            #expect(abs(chunk.cpuFaultToCPUFaultFloor - Double(chunk.cpuFaultNs) / Double(chunk.cpuFaultFloorNs)) < 1e-9)
        }
        #expect(report.oneTwoMiBFaultNs > 0 && report.fiveHundredTwelve4KiBFaultsNs > 0)
        let startedOnOneCPU = try CPUAffinity.allowed().count == 1  // e.g. under `taskset -c 0`
        #expect(report.cpu == nil || startedOnOneCPU, "not pinned unless asked")
        // Every fault migrated, and every migration came back (a warm-up round, then the
        // measured one: 2 x 4 faults for each of the 3 chunk sizes).
        #expect(report.statistics["migrationsToDevice"] == 24)
        #expect(report.statistics["cpuFaultMigrations"] == 24)
        // 2 MiB from device to device, over the default fabric and through system memory.
        let peer = try #require(report.deviceToDevice)
        #expect(peer.devices == ["sim0", "sim1"] && peer.peerProtocol == "fabric")
        #expect(peer.directNs > 0 && peer.throughSystemNs > 0 && peer.moveFloorNs > 0)
        #expect(abs(peer.directToMoveFloor - Double(peer.directNs) / Double(peer.moveFloorNs)) < 1e-9)
        #expect(abs(peer.throughSystemToMoveFloor - Double(peer.throughSystemNs) / Double(peer.moveFloorNs)) < 1e-9)
    }

    @Test("bench fault --chunk measures the sizes asked for; --comparisons 0 skips the comparison")
    func oneChunkSize() throws {
        let result = try ProcessRunner.svmCLI(["bench", "fault", "--json", "--iterations", "2", "--chunk", "64K", "--comparisons", "0"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.standardOutput.utf8))
        #expect(report.chunks.map(\.chunkBytes) == [65536])
        #expect(report.oneTwoMiBFaultNs == 0 && report.fiveHundredTwelve4KiBFaultsNs == 0)
        #expect(report.statistics["migrationsToDevice"] == 4)
        let text = try ProcessRunner.svmCLI(["bench", "fault", "--iterations", "2", "--chunk", "4K", "--comparisons", "0"])
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("4K "))
        #expect(text.standardOutput.contains("MOVE-FLOOR"))
        #expect(text.standardOutput.contains("device fault 4K: ") && text.standardOutput.contains("x move floor"))
        #expect(!text.standardOutput.contains("2 MiB as one fault"))
        #expect(!text.standardOutput.contains("device to device"), "measured with 2M chunks only")
        // Without a peer path (no interconnect) there is no device-to-device line.
        let alone = try ProcessRunner.svmCLI(["bench", "fault", "--json", "--iterations", "2", "--chunk", "2M", "--comparisons", "0", "--plugin-option", "P2PFabric.topology=none"])
        #expect(alone.status == 0, "\(alone.standardError)")
        #expect(try JSONDecoder().decode(Report.self, from: Data(alone.standardOutput.utf8)).deviceToDevice == nil)
    }

    @Test("bench fault --cpu runs on the CPU given, says so, and refuses one the process may not use")
    func pinnedToOneCPU() throws {
        let cpu = try #require(try CPUAffinity.allowed().last)
        let result = try ProcessRunner.svmCLI(["bench", "fault", "--json", "--iterations", "2", "--chunk", "4K", "--comparisons", "0", "--cpu", "\(cpu)"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.standardOutput.utf8))
        #expect(report.cpu == cpu)
        #expect(report.statistics["migrationsToDevice"] == 4 && report.statistics["cpuFaultMigrations"] == 4)
        let text = try ProcessRunner.svmCLI(["bench", "fault", "--iterations", "2", "--chunk", "4K", "--comparisons", "0", "--cpu", "\(cpu)"])
        #expect(text.status == 0 && text.standardOutput.contains("every thread on CPU \(cpu)"))
        let refused = try ProcessRunner.svmCLI(["bench", "fault", "--cpu", "100000"])
        #expect(refused.status == 2)
        #expect(refused.standardError.contains("--cpu 100000 is not a CPU this process may run on (\(CPUAffinity.describe(try CPUAffinity.allowed())))"))
        #expect(!refused.standardOutput.contains("device fault"), "refused before measuring anything")
    }

    @Test("bench fault --handler-placement follow-faulting-thread says so in text and JSON; a bad placement is refused")
    func handlerPlacement() throws {
        let arguments = ["bench", "fault", "--iterations", "2", "--chunk", "2M", "--comparisons", "0", "--handler-placement", "follow-faulting-thread"]
        let json = try ProcessRunner.svmCLI(arguments + ["--json"])
        #expect(json.status == 0, "\(json.standardError)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["handlerPlacement"] as? String == "follow-faulting-thread")
        #expect((object["statistics"] as? [String: Int])?["cpuFaultMigrations"] == 4)
        let text = try ProcessRunner.svmCLI(arguments)
        #expect(text.status == 0 && text.standardOutput.contains("fault handlers follow-faulting-thread"), "\(text.standardOutput)")
        let plain = try ProcessRunner.svmCLI(["bench", "fault", "--iterations", "2", "--chunk", "4K", "--comparisons", "0", "--json"])
        let plainObject = try #require(JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
        #expect(plainObject["handlerPlacement"] as? String == "scheduler")
        let refused = try ProcessRunner.svmCLI(["bench", "fault", "--handler-placement", "nearby"])
        #expect(refused.status == 2)
        #expect(refused.standardError.contains("--handler-placement 'nearby' is not scheduler or follow-faulting-thread"), "\(refused.standardError)")
    }

    @Test("bench fork times forks with no context, an empty one and device-resident data, which each fork brings home")
    func forkJSON() throws {
        struct ForkReport: Decodable {
            struct Resident: Decodable {
                let bytes: UInt64
                let forkNs: Int
                let toBareFork: Double
                let moveFloorNs: Int
                let homeToMoveFloor: Double
            }
            let repetitions: Int
            let bareForkNs: Int
            let emptyContextForkNs: Int
            let resident: [Resident]
            let statistics: [String: Int]
        }
        let result = try ProcessRunner.svmCLI(["bench", "fork", "--json", "--repetitions", "3"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONDecoder().decode(ForkReport.self, from: Data(result.standardOutput.utf8))
        #expect(report.repetitions == 3 && report.bareForkNs > 0 && report.emptyContextForkNs > 0)
        #expect(report.resident.map(\.bytes) == [2 << 20, 64 << 20])
        for resident in report.resident {
            #expect(resident.forkNs > 0 && resident.moveFloorNs > 0)
            #expect(abs(resident.toBareFork - Double(resident.forkNs) / Double(report.bareForkNs)) < 1e-9)
        }
        // Every fork was prepared; each one with data brought every range home: 3 x (1 + 32)
        // ranges of 2 MiB.
        #expect(report.statistics["forksPrepared"] == 9)
        #expect(report.statistics["forkMigrations"] == 3 * 33)
        let bad = try ProcessRunner.svmCLI(["bench", "fork", "--repetitions", "0"])
        #expect(bad.status == 2 && bad.standardError.contains("--repetitions"))
    }

    @Test("bench fault refuses a bad iteration count and an unknown device")
    func badInput() throws {
        let zero = try ProcessRunner.svmCLI(["bench", "fault", "--iterations", "0"])
        #expect(zero.status == 2)
        #expect(zero.standardError.contains("--iterations"))
        let badChunk = try ProcessRunner.svmCLI(["bench", "fault", "--chunk", "3M"])
        #expect(badChunk.status == 2)
        #expect(badChunk.standardError.contains("--chunk '3M'"))
        for (arguments, message) in [
            (["fault", "--iterations", "-3"], "The value '-3' is invalid for '--iterations <iterations>': expected an integer from 1 to 4096"),
            (["fault", "--comparisons", "1e9"], "invalid for '--comparisons <comparisons>': expected an integer from 0 to 1000"),
            (["fork", "--repetitions", "-1"], "invalid for '--repetitions <repetitions>': expected an integer from 1 to 1000"),
            (["sim", "--repetitions", "101"], "invalid for '--repetitions <repetitions>': expected an integer from 1 to 100"),
        ] {
            let result = try ProcessRunner.svmCLI(["bench"] + arguments)
            #expect(result.status == 2 && result.standardError.contains(message), "\(arguments): \(result.standardError)")
        }
        let unknown = try ProcessRunner.svmCLI(["bench", "fault", "--device", "NoSuchGPU"])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("NoSuchGPU"))
    }

    @Test("bench sim runs stream at each size, reports the median of its repetitions, and verifies")
    func simulation() throws {
        struct Row: Decodable {
            let workingSetBytes: UInt64
            let repetitions: Int
            let wallSeconds: Double
            let fastestWallSeconds: Double
            let slowestWallSeconds: Double
            let simulatedNanoseconds: UInt64
            let accesses: UInt64
            let faults: Int
            let cpuFloorSeconds: Double
            let warmUpSeconds: Double
            let wallToCPUFloor: Double
            let cpuFloorPerByteVsFirst: Double
            let wallToCPUFloorVsFirst: Double
            let verified: Bool
            let freePageReportingOrder: Int?
        }
        let result = try ProcessRunner.svmCLI(["bench", "sim", "--sizes", "2M,6M", "--repetitions", "1", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.standardOutput.utf8))
        #expect(rows.map(\.workingSetBytes) == [2 << 20, 6 << 20])
        // Sets under 512M run more often than asked, up to 8 times (the sizes between,
        // which would run fewer, need 512M of simulation: too slow for a debug build).
        #expect(rows.map(\.repetitions) == [8, 8])
        #expect(rows[0].fastestWallSeconds < rows[0].slowestWallSeconds)
        for row in rows {
            #expect(row.verified && row.accesses > 0 && row.faults > 0 && row.simulatedNanoseconds > 0)
            #expect(row.fastestWallSeconds <= row.wallSeconds && row.wallSeconds <= row.slowestWallSeconds)
            // The CPU floor was measured in this run, and the ratio is taken against it.
            #expect(row.cpuFloorSeconds > 0 && row.wallToCPUFloor > 0)
            // The floor's untimed warm-up ran before the runs.
            #expect(row.warmUpSeconds > 0)
            #expect(abs(row.wallToCPUFloor - row.wallSeconds / row.cpuFloorSeconds) < 1e-9 * row.wallToCPUFloor)
        }
        #expect(rows[1].simulatedNanoseconds > rows[0].simulatedNanoseconds)
        // The floor's growth per GiB, against the first size's floor.
        #expect(rows[0].cpuFloorPerByteVsFirst == 1)
        let floorGrowth = (rows[1].cpuFloorSeconds / 6) / (rows[0].cpuFloorSeconds / 2)
        #expect(abs(rows[1].cpuFloorPerByteVsFirst - floorGrowth) < 1e-9 * floorGrowth)
        // The simulation's growth against the machine's: its wall/floor against the first's.
        #expect(rows[0].wallToCPUFloorVsFirst == 1)
        let ratioGrowth = rows[1].wallToCPUFloor / rows[0].wallToCPUFloor
        #expect(abs(rows[1].wallToCPUFloorVsFirst - ratioGrowth) < 1e-9 * ratioGrowth)
        // More runs asked than the scaling gives: as many as asked.
        let text = try ProcessRunner.svmCLI(["bench", "sim", "--sizes", "2M", "--repetitions", "9"])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("CPU floor "))
        #expect(text.standardOutput.contains("wall/floor ") && text.standardOutput.contains("floor per GiB vs first 1.00"))
        #expect(text.standardOutput.contains("wall/floor vs first 1.00 (9 runs, warm-up "))
        // The machine's free page reporting, said when it is on, in the note and the rows.
        let order = FreePageReporting.reportedOrder()
        #expect(rows.allSatisfy { $0.freePageReportingOrder == order })
        #expect(text.standardOutput.contains("note: this machine hands free memory back to its hypervisor") == (order != nil))
        let bad = try ProcessRunner.svmCLI(["bench", "sim", "--sizes", "2M,huge"])
        #expect(bad.status == 2 && bad.standardError.contains("'huge'"))
    }
}
