import Foundation
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// Whole experiments on SimDevice: every workload verifies, runs are deterministic,
/// oversubscription evicts, the trace is valid trace-event JSON, bad configurations are
/// refused.
@Suite("Experiments", .serialized)
struct ExperimentTests {
    func run(_ configuration: ExperimentConfiguration, plugin: String = PackagePaths.product("libSimDevice.so"), trace: TraceRecorder? = nil) throws -> ExperimentReport {
        let host = PluginHost(
            configuration: PluginHost.Configuration(
                searchPath: PluginSearchPath(builtinDirectory: nil, commandLineEntries: [plugin, PackagePaths.product("libP2PFabric.so")]),
                options: configuration.pluginOptions))
        return try Experiment(configuration: configuration, host: host).run(trace: trace)
    }

    /// Who makes a device's ops fail: SimDevice itself (its `fail-*` options), or a plugin
    /// of another author around it (the FailureProxy fixture, in C, which returns `-EIO`
    /// without calling SimDevice).
    enum FailureInjector: String, CaseIterable, CustomTestStringConvertible {
        case simDevice = "SimDevice"
        case proxy = "FailureProxy"

        var testDescription: String { rawValue }

        /// The option that fails every `every`th zap, or copy out of device memory.
        func zapOption(every: Int) -> [String: String] {
            [self == .simDevice ? "fail-zap-every" : "proxy-fail-zap-every": "\(every)"]
        }

        func copyOutOption(every: Int) -> [String: String] {
            [self == .simDevice ? "fail-copy-out-every" : "proxy-fail-copy-out-every": "\(every)"]
        }

        /// Runs `body` with the plugin file to load, the proxy built for the occasion.
        func withPlugin<T>(_ body: (String) throws -> T) throws -> T {
            let simDevice = PackagePaths.product("libSimDevice.so")
            guard self == .proxy else { return try body(simDevice) }
            let folder = try TemporaryDirectory()
            let proxy = folder.file("libFailureProxy.so")
            try CPluginCompiler.compile(PackagePaths.fixture("FailureProxy/failure_proxy.c"), defines: ["PROXY_TARGET=\"\(simDevice)\""], output: proxy)
            return try body(proxy)
        }
    }

    func configuration(_ workload: WorkloadKind, _ workingSet: UInt64, deviceMemory: UInt64 = 64 << 20, seed: UInt64 = 1) -> ExperimentConfiguration {
        var configuration = ExperimentConfiguration()
        configuration.workload = workload
        configuration.workingSetBytes = workingSet
        configuration.deviceMemoryBytes = deviceMemory
        configuration.seed = seed
        return configuration
    }

    /// The report as JSON without its wall-clock part.
    func deterministicJSON(_ report: ExperimentReport) throws -> String {
        var report = report
        report.wallClock = .init(seconds: 0, accessesPerSecond: 0, faultsPerSecond: 0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    @Test("Determinism: the same configuration and seed give the same report, apart from the wall clock", arguments: [WorkloadKind.stream, .gather, .pingPong])
    func determinism(workload: WorkloadKind) throws {
        let configuration = configuration(workload, 6 << 20, seed: 42)
        let first = try run(configuration)
        let second = try run(configuration)
        #expect(first.verified && second.verified)
        #expect(first.simulatedNanoseconds > 0)
        #expect(try deterministicJSON(first) == deterministicJSON(second))
    }

    @Test("Four devices: every workload verifies on every interconnect, and two runs on a fabric give identical reports but the wall clock", arguments: WorkloadKind.allCases)
    func fourDevicesAreDeterministic(workload: WorkloadKind) throws {
        for shape in ExperimentConfiguration.InterconnectShape.allCases {
            // Every workload has at least four ranges to shard (the gather's indices are a
            // quarter of the working set).
            var configuration = configuration(workload, 32 << 20, deviceMemory: 8 << 20, seed: 7)
            configuration.devices = 4
            configuration.interconnect = shape
            let first = try run(configuration)
            #expect(first.verified, "\(shape): \(first.verification)")
            if shape == .fabric {
                // Once is enough: the other shapes time the same code with other paths.
                let second = try run(configuration)
                #expect(try deterministicJSON(first) == deterministicJSON(second), "\(shape)")
            }
            #expect(first.devices.count == 4 && first.devices.allSatisfy { $0.kernels > 0 }, "\(shape): a device ran nothing")
            #expect(first.ownerGroups.count == (shape == .none ? 4 : 1), "\(shape)")
            #expect(first.peerLinks.count == (shape == .none ? 0 : 12), "\(shape)")
            let peerBytes = first.peerLinks.reduce(0) { $0 + $1.carried.bytes }
            let toPeers = first.devices.reduce(0) { $0 + $1.bytesToPeers }
            #expect(peerBytes == toPeers && UInt64(first.svm["peerMigrations"] ?? 0) == UInt64(first.devices.reduce(0) { $0 + $1.migrationsToPeers }))
            if workload == .pingPong {
                // The buffer passes from device to device: directly on a peer path, else home first.
                #expect((first.svm["migrationsBetweenDevices"] ?? 0) > 0)
                #expect(shape == .none ? peerBytes == 0 : peerBytes > 0, "\(shape): \(peerBytes)")
            }
        }
    }

    /// `configuration` on two devices with policy `migrate`, then `peer`: both verify, the
    /// first migrates between the devices and reads no peer memory, the second migrates
    /// nothing between them.
    func migratedThenMapped(_ configuration: ExperimentConfiguration) throws -> (migrated: ExperimentReport, mapped: ExperimentReport) {
        var configuration = configuration
        configuration.devices = 2
        let migrated = try run(configuration)
        configuration.policy = .accessPeerInPlace
        let mapped = try run(configuration)
        #expect(migrated.verified && mapped.verified, "\(migrated.verification) \(mapped.verification)")
        #expect((migrated.svm["peerMigrations"] ?? 0) > 0 && migrated.devices.allSatisfy { $0.peerBytesRead == 0 })
        #expect(mapped.svm["migrationsBetweenDevices"] == 0)
        return (migrated, mapped)
    }

    @Test("Policy peer: the gather's table, which both devices read, is read in place from the peer's memory instead of migrating between them")
    func gatherReadsThePeersTable() throws {
        let (_, mapped) = try migratedThenMapped(configuration(.gather, 16 << 20))
        #expect((mapped.svm["peerMappings"] ?? 0) > 0)
        let read = mapped.devices.reduce(0) { $0 + $1.peerBytesRead }
        #expect(read > 0 && mapped.peerLinks.reduce(0) { $0 + $1.carried.bytes } == read, "what was read crossed the peer paths")
    }

    @Test("The stencil verifies; on two devices its halo migrates the boundary ranges back and forth, or, with policy peer, is read in place")
    func stencilHalos() throws {
        let configuration = configuration(.stencil, 16 << 20)
        let one = try run(configuration)
        #expect(one.verified && one.verification.checked == (16 << 20) / 8, "\(one.verification)")
        // A halo is one element per side and triad: a few bytes, never a range.
        let (migrated, mapped) = try migratedThenMapped(configuration)
        let halo = mapped.devices.reduce(0) { $0 + $1.peerBytesRead }
        #expect(halo > 0 && halo < 4096, "\(halo) bytes read from peers")
        #expect(mapped.simulatedNanoseconds < migrated.simulatedNanoseconds)
    }

    @Test("Matmul verifies on 1, 2 and 4 devices: each computes whole ranges of C's rows, and every device reads all of B", arguments: [1, 2, 4])
    func matmulShards(devices: Int) throws {
        var configuration = configuration(.matmul, 16 << 20)
        configuration.devices = devices
        configuration.interconnect = .fabric
        let shape = MatmulWorkload(workingSetBytes: 16 << 20)
        // 48 rows of 64Ki elements (256 KiB): C is six 2 MiB ranges, B (16 rows) two; 768 launches.
        #expect(shape.rows == 48 && shape.depth == 16 && shape.columns == 64 << 10)
        let report = try run(configuration)
        #expect(report.verified && report.verification.checked == shape.rows * shape.columns, "\(report.verification)")
        let rangesOfC: [Int] = [1: [6], 2: [3, 3], 4: [2, 2, 1, 1]][devices]!
        // Eight rows a range, sixteen triads a row.
        let kernels: [Int] = rangesOfC.map { $0 * 8 * 16 }
        #expect(report.devices.map(\.kernels) == kernels)
        // Each device brings its own ranges of C from system memory, the first B's as well.
        var fromSystem = rangesOfC
        fromSystem[0] += 2
        #expect(report.devices.map(\.migrationsToDevice) == fromSystem)
        // B then travels from each device to the next, directly over the fabric.
        let receivedB: [Int] = (0..<devices).map { $0 == 0 ? 0 : 2 }
        let passedOnB: [Int] = (0..<devices).map { $0 == devices - 1 ? 0 : 2 }
        #expect(report.devices.map(\.migrationsFromPeers) == receivedB)
        #expect(report.devices.map(\.migrationsToPeers) == passedOnB)
    }

    @Test("Policy peer: the matmul's B, which every device reads whole, is read in place from the peer's memory instead of migrating between them")
    func matmulReadsThePeersB() throws {
        let (migrated, mapped) = try migratedThenMapped(configuration(.matmul, 16 << 20))
        #expect(migrated.devices[1].migrationsFromPeers == 2)
        #expect((mapped.svm["peerMappings"] ?? 0) > 0)
        // The second device's 24 rows each read the 16 rows of B (256 KiB each) from the first device's memory.
        let readB: [UInt64] = [0, 24 * 16 * (256 << 10)]
        #expect(mapped.devices.map(\.peerBytesRead) == readB)
        #expect(mapped.peerLinks.reduce(0) { $0 + $1.carried.bytes } == mapped.devices[1].peerBytesRead)
    }

    @Test("STREAM sharded across devices: each runs the triad on its own whole ranges, nothing moves between devices")
    func streamShards() throws {
        var configuration = configuration(.stream, 24 << 20)
        configuration.devices = 3
        let report = try run(configuration)
        #expect(report.verified, "\(report.verification)")
        // Four ranges per array: two, one and one.
        #expect(report.devices.map(\.kernels) == [2, 2, 2])
        #expect(report.devices.map(\.bytesToDevice) == [12 << 20, 6 << 20, 6 << 20])
        #expect(report.svm["migrationsBetweenDevices"] == 0)
        #expect(report.devices.allSatisfy { $0.bytesToDevice > 0 })
    }

    @Test("STREAM migrates all three arrays once in 2 MiB ranges, runs from device memory, and verifies")
    func stream() throws {
        let report = try run(configuration(.stream, 10 << 20))
        #expect(report.verified && report.verification.checked == (10 << 20) / 12)
        let device = report.devices[0]
        // Three arrays of 3.3 MiB, each mapped as two whole 2 MiB windows (so no range is
        // smaller, wherever the arrays land): two ranges each, to device once and back.
        #expect(device.migrationsToDevice == 6 && device.bytesToDevice == 12 << 20)
        #expect(device.migrationsToSystem == 6 && device.evictions == 0)
        #expect(device.faults.read == 4 && device.faults.write == 2)
        #expect(device.remoteBytesRead == 0 && device.tlbMisses > 0 && device.tlbHits > device.tlbMisses)
        #expect(report.links[0].hostToDevice.bytes == 12 << 20 && report.links[0].deviceToHost.bytes == 12 << 20)
        #expect(report.faultServiceLatency.count == 6)
        #expect(device.busyNanoseconds <= report.simulatedNanoseconds)
    }

    @Test("Oversubscription: a working set of 1.5× device memory evicts to system memory and still verifies")
    func oversubscription() throws {
        var configuration = configuration(.oversubscription, 0, deviceMemory: 16 << 20)
        configuration.workingSetBytes = nil  // the default: 1.5 × device memory
        let report = try run(configuration)
        #expect(report.configuration.effectiveWorkingSetBytes == 24 << 20)
        #expect(report.verified, "\(report.verification)")
        let device = report.devices[0]
        #expect(device.evictions > 0)
        #expect(device.bytesToDevice > 24 << 20, "the second sweep migrates evicted ranges again")
        #expect(report.links[0].deviceToHost.bytes >= UInt64(device.evictions) * (2 << 20))
    }

    @Test("Ping-pong: data migrates to the device and back every round, and verifies")
    func pingPong() throws {
        let report = try run(configuration(.pingPong, 4 << 20))
        #expect(report.verified)
        let device = report.devices[0]
        // Two 2 MiB ranges, four rounds: to device and back each round.
        #expect(device.migrationsToDevice == 8 && device.migrationsToSystem == 8)
        #expect(device.faults.atomic == 8)
    }

    @Test("Gather: each element is an access; the table migrates on first touch; verifies")
    func gather() throws {
        let report = try run(configuration(.gather, 8 << 20))
        #expect(report.verified)
        let device = report.devices[0]
        #expect(device.accesses >= UInt64((8 << 20) / 16))
        #expect(device.bytesToDevice == 8 << 20)
    }

    @Test("The system-memory policy maps CPU pages in place: no migration, remote accesses over the link")
    func systemPolicy() throws {
        var configuration = configuration(.stream, 3 << 20)
        configuration.policy = .systemMemory
        let report = try run(configuration)
        #expect(report.verified)
        let device = report.devices[0]
        #expect(device.migrationsToDevice == 0)
        // Two iterations read b and c and write a (1 MiB each); reads a fault interrupted
        // are issued again when the access replays.
        #expect(device.remoteBytesRead >= 2 * 2 * (1 << 20), "\(device.remoteBytesRead)")
        #expect(device.remoteBytesWritten == 2 * (1 << 20))
        #expect(report.links[0].hostToDevice.bytes == device.remoteBytesRead)
    }

    @Test("The trace is trace-event JSON: metadata names, complete events with timestamps, per device and link")
    func trace() throws {
        let recorder = TraceRecorder()
        _ = try run(configuration(.stream, 3 << 20), trace: recorder)
        let object = try JSONSerialization.jsonObject(with: recorder.json())
        let events = try #require((object as? [String: Any])?["traceEvents"] as? [[String: Any]])
        #expect(events.count == recorder.eventCount && !events.isEmpty)
        var categories = Set<String>()
        for event in events {
            let phase = try #require(event["ph"] as? String)
            #expect(event["name"] is String && event["pid"] is Int && event["tid"] is Int && event["ts"] is NSNumber)
            if phase == "X" {
                let duration = try #require(event["dur"] as? Double)
                #expect(duration >= 0)
                categories.insert(try #require(event["cat"] as? String))
            } else {
                #expect(phase == "M")
                #expect((event["args"] as? [String: String])?["name"] != nil)
            }
        }
        // "link": the host link's transfers on the topology's links they cross.
        #expect(categories == ["cpu", "kernel", "fault", "migration", "link"])
    }

    @Test("Several devices: the trace has a process per link that peer paths cross, with the migrations it carried")
    func tracePeerPaths() throws {
        let recorder = TraceRecorder()
        var configuration = configuration(.pingPong, 4 << 20)
        configuration.devices = 2
        let report = try run(configuration, trace: recorder)
        let object = try JSONSerialization.jsonObject(with: recorder.json())
        let events = try #require((object as? [String: Any])?["traceEvents"] as? [[String: Any]])
        let names = events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "process_name" }
            .compactMap { ($0["args"] as? [String: String])?["name"] }
        #expect(names.contains("link sim:0-sim:1 (fabric)"), "\(names)")
        let threads = events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "thread_name" }
            .compactMap { ($0["args"] as? [String: String])?["name"] }
        #expect(threads.contains("sim:0→sim:1") && threads.contains("sim:1→sim:0"), "one thread per direction: \(threads)")
        // One hop per path: one span per migration.
        let peerSpans = events.filter { $0["cat"] as? String == "peer" }
        #expect(peerSpans.count == (report.svm["peerMigrations"] ?? -1) && !peerSpans.isEmpty)
        let peerHops = report.hops.filter { hop in report.peerLinks.contains { $0.route == hop.link } }
        #expect(peerHops.map(\.carried.transfers).reduce(0, +) == peerSpans.count)
        #expect(peerSpans.allSatisfy { $0["name"] as? String == "migrate sim0 → sim1" })
    }

    @Test("Injected device-memory allocation failures: ranges are evicted or stay in system memory; no wrong data")
    func allocationFailures() throws {
        var configuration = configuration(.pingPong, 8 << 20)
        configuration.deviceOptions = ["fail-alloc-every": "2"]
        let report = try run(configuration)
        #expect(report.verified, "\(report.verification)")
        #expect(report.devices[0].evictions + (report.svm["failedMigrations"] ?? 0) > 0, "\(report.svm)")
    }

    @Test("Injected copy failures (copy path): a migration to the device gives up, one back is tried again; no wrong data")
    func copyFailures() throws {
        var configuration = configuration(.stream, 12 << 20)
        // Copies happen on the copy path; zero-copy migrations move pages instead.
        configuration.deviceOptions = ["fail-copy-every": "3", "zero-copy": "off"]
        let report = try run(configuration)
        #expect(report.verified, "\(report.verification)")
        #expect((report.svm["failedCopies"] ?? 0) > 0 && (report.svm["failedMigrations"] ?? 0) > 0, "\(report.svm)")

        // Every copy fails: nothing reaches device memory; the device uses system memory in
        // place and the results are still right.
        configuration.deviceOptions = ["fail-copy-every": "1", "zero-copy": "off"]
        let broken = try run(configuration)
        #expect(broken.verified, "\(broken.verification)")
        #expect(broken.devices[0].migrationsToDevice == 0 && broken.devices[0].remoteBytesWritten > 0)
    }

    @Test("Injected zap failures: a zap failing once in a while is tried again and the run verifies; one that keeps failing takes the device out of service, never a stale mapping", arguments: WorkloadKind.allCases, FailureInjector.allCases)
    func zapFailures(workload: WorkloadKind, injector: FailureInjector) throws {
        try injector.withPlugin { plugin in try zapFailures(workload: workload, injector: injector, plugin: plugin) }
    }

    func zapFailures(workload: WorkloadKind, injector: FailureInjector, plugin: String) throws {
        // 12 MiB through 8 MiB of device memory: evictions zap in every workload.
        var configuration = configuration(workload, 12 << 20, deviceMemory: 8 << 20)
        configuration.devicePlugin = injector.rawValue
        configuration.deviceOptions = injector.zapOption(every: 4)
        let report = try run(configuration, plugin: plugin)
        #expect(report.verified, "\(report.verification)")
        #expect((report.svm["failedZaps"] ?? 0) > 0, "no zap failed: \(report.svm)")

        // Every zap fails: the first one takes the device out of service; the run stops
        // with that reason instead of computing with translations the host took away.
        configuration.deviceOptions = injector.zapOption(every: 1)
        do {
            let broken = try run(configuration, plugin: plugin)
            // A run whose only zaps came after its last kernel may finish: then it checks right.
            #expect(broken.verification.wrong == 0, "\(broken.verification)")
        } catch {
            #expect("\(error)".contains("is out of service: its zap of"), "\(error)")
        }
    }

    @Test("Copies out of device memory that always fail: every workload reports the data lost, reads none of it, checks the rest right", arguments: WorkloadKind.allCases, FailureInjector.allCases)
    func permanentCopyOutFailures(workload: WorkloadKind, injector: FailureInjector) throws {
        var configuration = configuration(workload, 12 << 20, deviceMemory: 8 << 20)
        configuration.devicePlugin = injector.rawValue
        // The copy path, where data comes back through copy_to_ram.
        configuration.deviceOptions = injector.copyOutOption(every: 1).merging(["zero-copy": "off"]) { $1 }
        let report = try injector.withPlugin { try run(configuration, plugin: $0) }
        #expect(!report.verified)
        #expect(report.verification.wrong == 0, "\(report.verification)")
        #expect(report.verification.lost > 0 && (report.svm["lostBytes"] ?? 0) > 0, "\(report.verification) \(report.svm)")
        #expect((report.svm["failedCopies"] ?? 0) > 0)
    }

    @Test("Injected device reset after the last kernel: what device memory held is reported lost, the rest checks right")
    func resetAfterLastKernel() throws {
        // 12 MiB (six ranges) swept twice through 8 MiB of device memory: after the second
        // sweep four ranges are in device memory, two were evicted to system memory.
        var configuration = configuration(.oversubscription, 12 << 20, deviceMemory: 8 << 20)
        configuration.deviceOptions = ["reset-after-kernel": "2"]
        let report = try run(configuration)
        let verification = report.verification
        #expect(!report.verified)
        #expect(verification.wrong == 0, "\(verification)")
        #expect(verification.lost == (8 << 20) / 4 && verification.checked == (4 << 20) / 4, "\(verification)")
        #expect(report.skippedKernels == 0)
        #expect(report.svm["deviceResets"] == 1 && report.svm["lostBytes"] == 8 << 20, "\(report.svm)")
        #expect(report.devices[0].resets == 1 && report.devices[0].lostBytes == 8 << 20 && report.devices[0].lostRanges == 4)
    }

    @Test("A triad whose three arrays do not fit in device memory does not thrash: ranges evicted during the kernel are mapped in place")
    func thrashingIsAvoided() throws {
        // Three arrays of 4 MiB in 8 MiB of device memory: each step of the triad needs a
        // range of each array, and batches would evict each other's ranges forever.
        let report = try run(configuration(.stream, 12 << 20, deviceMemory: 8 << 20))
        #expect(report.verified, "\(report.verification)")
        #expect((report.svm["thrashingAvoided"] ?? 0) > 0, "\(report.svm)")
        #expect(report.devices[0].remoteBytesRead + report.devices[0].remoteBytesWritten > 0)
    }

    @Test("The thrashing guard: a batch's migrations are spared, a range evicted in a kernel thrashes in that kernel only")
    func thrashingGuardRules() {
        let guardian = ThrashingGuard()
        let (first, second) = (SVMRange(interval: AddressInterval(start: 0, end: 0x1000)), SVMRange(interval: AddressInterval(start: 0x1000, end: 0x2000)))
        guardian.begin(kernel: 1, batch: 1)
        guardian.migrated(first)
        guardian.evicted(second)
        #expect(guardian.spares(first) && !guardian.spares(second))
        #expect(guardian.thrashes(second) && !guardian.thrashes(first))
        guardian.begin(kernel: 1, batch: 2)
        #expect(!guardian.spares(first), "the next batch may evict it")
        #expect(guardian.thrashes(second), "still the same kernel")
        guardian.begin(kernel: 2, batch: 1)
        #expect(!guardian.thrashes(second), "a new kernel may migrate it again")
        // Outside a kernel launch (kernel 0): no rule applies.
        guardian.begin(kernel: 0, batch: 0)
        guardian.migrated(first)
        guardian.evicted(second)
        #expect(!guardian.spares(first) && !guardian.thrashes(second))
    }

    @Test("Injected device reset mid-run: kernels that would use lost data are not run, nothing is checked wrong", arguments: [WorkloadKind.stream, .pingPong])
    func resetMidRun(workload: WorkloadKind) throws {
        var configuration = configuration(workload, 8 << 20)
        configuration.deviceOptions = ["reset-after-kernel": "1"]
        let report = try run(configuration)
        #expect(!report.verified)
        #expect(report.verification.wrong == 0, "\(report.verification)")
        #expect(report.verification.lost > 0)
        // Stream: the second triad; ping-pong: the last three rounds.
        #expect(report.skippedKernels == (workload == .stream ? 1 : 3))
        #expect(report.devices[0].kernels == 1 && report.devices[0].resets == 1)
    }

    @Test("Bad configurations are refused with what is wrong, before anything runs")
    func badConfiguration() throws {
        var configuration = configuration(.stream, 8 << 20, deviceMemory: 3 << 20)
        #expect(throws: ExperimentError.self) { try run(configuration) }
        configuration = self.configuration(.stream, 100)
        do {
            _ = try run(configuration)
            Issue.record("a 100-byte working set was accepted")
        } catch {
            #expect("\(error)".contains("working set"))
        }
    }
}
