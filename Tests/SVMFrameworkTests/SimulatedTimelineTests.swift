import SVMPluginKit
import Testing

@testable import SVMFramework

/// How the timeline composes a phase's time, against hand-computed values with the default
/// parameters (PCIe Gen4 x16: 31.5 bytes/ns, 1 µs latency, 8 KiB half efficiency; 45 µs per
/// fault batch; 2 copy engines; 20 µs per CPU fault; 10 bytes/ns of CPU work).
@Suite("Simulated timeline")
struct SimulatedTimelineTests {
    static let twoMiB: UInt64 = 2 << 20

    @Test("A batch of two faults, each migrating 2 MiB: latency, then both copies sharing the link, then execution")
    func kernelWithOneBatch() {
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        timeline.addDevice(id: 1, name: "sim0")
        var result = KernelResult(faults: 2, bytes: 4 << 20)
        result.activity.busyNanoseconds = 1_000
        result.activity.faultBatches = 1
        timeline.kernel("k", on: 1, result: result, activity: [
            .deviceFault(deviceID: 1, address: 0x1000_0000, access: .read, batch: 1),
            .migration(from: .system, to: .device(1), bytes: Self.twoMiB, cause: .deviceFault),
            .deviceFault(deviceID: 1, address: 0x1020_0000, access: .write, batch: 1),
            .migration(from: .system, to: .device(1), bytes: Self.twoMiB, cause: .deviceFault),
        ])
        // Each copy carries 2 MiB + 8 KiB = 2 105 344 bytes at half of 31.5 bytes/ns:
        // 133 672.6 ns, checked at the next whole nanosecond (133 673), arriving 1 µs later.
        let batchEnd: UInt64 = 45_000 + 133_673 + 1_000
        #expect(timeline.now == batchEnd + 1_000)
        let device = timeline.deviceStatistics[0]
        #expect(device.faults.read == 1 && device.faults.write == 1 && device.faultBatches == 1)
        #expect(device.migrationsToDevice == 2 && device.bytesToDevice == 2 * Self.twoMiB)
        #expect(device.faultServiceNanoseconds == batchEnd && device.executionNanoseconds == 1_000)
        #expect(device.busyNanoseconds == batchEnd + 1_000)
        let latency = timeline.faultServiceLatency
        #expect(latency.count == 2)
        #expect(latency.max >= batchEnd - batchEnd / 1000 && latency.max <= batchEnd + batchEnd / 1000, "three significant digits")
        let link = timeline.linkStatistics[0]
        #expect(link.hostToDevice.bytes == 2 * Self.twoMiB && link.hostToDevice.transfers == 2)
        #expect(link.hostToDevice.busyNanoseconds == 133_673)
        #expect(link.deviceToHost == LinkStatistics.Direction())
    }

    @Test("Direct migrations run on the source's copy engines by default, on the destination's when asked: two sources into one destination with one engine each overlap, or queue")
    func peerCopyEngines() throws {
        func path(_ from: Int) -> PeerPath {
            PeerPath(linkProtocol: .fabric, hops: [
                TopologyLink(kind: .fabric, name: "f\(from)", endA: "d\(from)", endB: "d3", bandwidthBytesPerSecond: 25_000_000_000, latencyNanoseconds: 700, lanes: 4),
            ])
        }
        func batchTime(_ engine: TimingParameters.PeerCopyEngine) -> UInt64 {
            var parameters = TimingParameters()
            parameters.copyEngines = 1
            parameters.peerCopyEngine = engine
            let timeline = SimulatedTimeline(parameters: parameters)
            for id in UInt64(1)...3 { timeline.addDevice(id: id, name: "sim\(id)", location: "d\(id)") }
            timeline.addPeerPath(from: 1, to: 3, path: path(1))
            timeline.addPeerPath(from: 2, to: 3, path: path(2))
            timeline.kernel("k", on: 3, result: KernelResult(faults: 2, bytes: 4 << 20), activity: [
                .deviceFault(deviceID: 3, address: 0x1000_0000, access: .read, batch: 1),
                .migration(from: .device(1), to: .device(3), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(path(1))),
                .deviceFault(deviceID: 3, address: 0x1020_0000, access: .read, batch: 1),
                .migration(from: .device(2), to: .device(3), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(path(2))),
            ])
            #expect(timeline.peerLinkStatistics.map(\.carried.bytes) == [Self.twoMiB, Self.twoMiB])
            let statistics = timeline.deviceStatistics
            #expect(statistics.map(\.migrationsToPeers) == [1, 1, 0] && statistics[2].migrationsFromPeers == 2)
            return timeline.now
        }
        // Each copy: (2 MiB + 8 KiB) at 25 bytes/ns = 84 213.76 ns, then 700 ns of latency.
        // The copy engine (31.5 bytes/ns) is faster than the path, so the path limits.
        let oneCopy: UInt64 = 84_214 + 700
        #expect(batchTime(.source) == 45_000 + oneCopy, "two paths, two source engines: at once")
        #expect(batchTime(.destination) == 45_000 + 2 * oneCopy, "one destination engine: one after the other")
    }

    /// Two peers behind one PCIe switch migrate into a third at once: their paths share the
    /// third's switch link in the downstream direction, so each gets half of it, while the
    /// reverse direction and the sources' own links carry nothing of the other's.
    @Test("Paths that share a hop share its bandwidth; the reverse direction is a channel of its own")
    func sharedHop() {
        func link(_ device: Int) -> TopologyLink {
            TopologyLink(kind: .pcie, name: "sw-d\(device)", endA: "sw", endB: "d\(device)", bandwidthBytesPerSecond: 20_000_000_000, latencyNanoseconds: 500, lanes: 16, pcieGeneration: 4)
        }
        func time(sources: [UInt64]) -> (now: UInt64, hops: [HopStatistics]) {
            let timeline = SimulatedTimeline(parameters: TimingParameters())
            for id in UInt64(1)...3 { timeline.addDevice(id: id, name: "sim\(id)", location: "d\(id)") }
            var activity: [SVMActivityLog.Entry] = []
            for source in sources {
                let path = PeerPath(linkProtocol: .pciePeerToPeer, hops: [link(Int(source)), link(3)])
                timeline.addPeerPath(from: source, to: 3, path: path)
                activity += [
                    .deviceFault(deviceID: 3, address: 0x1000_0000 * source, access: .read, batch: 1),
                    .migration(from: .device(source), to: .device(3), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(path)),
                ]
            }
            timeline.kernel("k", on: 3, result: KernelResult(faults: 2), activity: activity)
            return (timeline.now, timeline.hopStatistics)
        }
        // One copy alone: (2 MiB + 8 KiB) at 20 bytes/ns = 105 267.2 ns, then 2 × 500 ns.
        let alone = time(sources: [1])
        #expect(alone.now == 45_000 + 105_268 + 1_000)
        // Two at once: the shared hop gives each 10 bytes/ns: 210 534.4 ns.
        let shared = time(sources: [1, 2])
        #expect(shared.now == 45_000 + 210_535 + 1_000)
        #expect(shared.hops.map { "\($0.link) \($0.from)→\($0.to)" } == ["sw-d1 d1→sw", "sw-d3 sw→d3", "sw-d2 d2→sw"])
        #expect(shared.hops.map(\.carried.transfers) == [1, 2, 1])
    }

    /// Host traffic crosses the topology's PCIe links up to the root complex: two devices
    /// under one switch migrating from system memory at once share the switch's uplink, and
    /// a migration from the host and one from a peer into the same device share its link.
    @Test("Host routes through the topology share the switch uplink, and a device's link with peer traffic")
    func hostRoutes() {
        func link(_ name: String, _ a: String, _ b: String) -> TopologyLink {
            TopologyLink(kind: .pcie, name: name, endA: a, endB: b, bandwidthBytesPerSecond: 20_000_000_000, latencyNanoseconds: 500, lanes: 16, pcieGeneration: 4)
        }
        let uplink = link("root-sw", "root", "sw")
        func route(_ device: UInt64) -> [TopologyLink] { [link("sw-d\(device)", "sw", "d\(device)"), uplink] }
        let peer = PeerPath(linkProtocol: .pciePeerToPeer, hops: [link("sw-d1", "sw", "d1"), link("sw-d2", "sw", "d2")])
        /// Kernels on disjoint memory, each with one 2 MiB migration into its device.
        func time(_ migrations: [(device: UInt64, from: SVMActivityLog.Location)]) -> (now: UInt64, links: [LinkStatistics]) {
            let timeline = SimulatedTimeline(parameters: TimingParameters())
            for id in UInt64(1)...2 { timeline.addDevice(id: id, name: "sim\(id)", location: "d\(id)", hostRoute: route(id)) }
            timeline.addPeerPath(from: 1, to: 2, path: peer)
            for (index, migration) in migrations.enumerated() {
                let memory = AddressInterval(start: 0x1000_0000 * UInt64(index + 1), end: 0x1000_0000 * UInt64(index + 1) + Self.twoMiB)
                let route: SVMActivityLog.Route = migration.from == .system ? .throughSystem : .peer(peer)
                timeline.kernel("k\(index)", on: migration.device, result: KernelResult(faults: 1), activity: [
                    .deviceFault(deviceID: migration.device, address: memory.start, access: .read, batch: 1),
                    .migration(from: migration.from, to: .device(migration.device), bytes: Self.twoMiB, cause: .deviceFault, route: route),
                ], reads: [memory], writes: [])
            }
            return (timeline.now, timeline.linkStatistics)
        }
        // Alone: (2 MiB + 8 KiB) at 20 bytes/ns = 105 267.2 ns, then two hops of 500 ns.
        let alone = time([(1, .system)])
        #expect(alone.now == 45_000 + 105_268 + 1_000)
        #expect(alone.links[0].name == "PCIe Gen4 x16 via sw-d1 + root-sw" && alone.links[0].hostToDevice.bytes == Self.twoMiB)
        // Two devices at once: the uplink gives each 10 bytes/ns.
        #expect(time([(1, .system), (2, .system)]).now == 45_000 + 210_535 + 1_000)
        #expect(time([(2, .system), (1, .system)]).now == 45_000 + 210_535 + 1_000)
        // One batch of device 2 migrating from the host and from device 1 at once: they
        // share sw→d2 (the host's crosses root→sw too, the peer's d1→sw).
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        for id in UInt64(1)...2 { timeline.addDevice(id: id, name: "sim\(id)", location: "d\(id)", hostRoute: route(id)) }
        timeline.addPeerPath(from: 1, to: 2, path: peer)
        timeline.kernel("k", on: 2, result: KernelResult(faults: 2), activity: [
            .deviceFault(deviceID: 2, address: 0x1000_0000, access: .read, batch: 1),
            .migration(from: .system, to: .device(2), bytes: Self.twoMiB, cause: .deviceFault),
            .deviceFault(deviceID: 2, address: 0x2000_0000, access: .read, batch: 1),
            .migration(from: .device(1), to: .device(2), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(peer)),
        ])
        #expect(timeline.now == 45_000 + 210_535 + 1_000)
        let hops = timeline.hopStatistics.filter { $0.carried.transfers > 0 }.map { "\($0.link) \($0.from)→\($0.to) \($0.carried.transfers)" }
        #expect(hops == ["sw-d1 d1→sw 1", "root-sw root→sw 1", "sw-d2 sw→d2 2"], "\(hops)")
    }

    /// Kernels on two devices that use different memory overlap in simulated time; one that
    /// reads what the other wrote waits for it; a CPU phase waits for both.
    @Test("Kernels on different devices overlap unless one uses memory the other writes")
    func overlappingKernels() {
        func run(secondReads: [AddressInterval]) -> UInt64 {
            let timeline = SimulatedTimeline(parameters: TimingParameters())
            timeline.addDevice(id: 1, name: "sim0")
            timeline.addDevice(id: 2, name: "sim1")
            var result = KernelResult()
            result.activity.busyNanoseconds = 100_000
            let a = AddressInterval(start: 0x1000_0000, end: 0x1020_0000)
            timeline.kernel("first", on: 1, result: result, activity: [], reads: [], writes: [a])
            timeline.kernel("second", on: 2, result: result, activity: [], reads: secondReads, writes: [AddressInterval(start: 0x2000_0000, end: 0x2020_0000)])
            timeline.cpu("after", bytes: 0, activity: [])
            return timeline.now
        }
        #expect(run(secondReads: []) == 100_000, "independent: side by side")
        #expect(run(secondReads: [AddressInterval(start: 0x1010_0000, end: 0x1011_0000)]) == 200_000, "a read of the first's output waits")
        // Without intervals a kernel depends on every earlier one (timeline tests' kernels).
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        timeline.addDevice(id: 1, name: "sim0")
        timeline.addDevice(id: 2, name: "sim1")
        var result = KernelResult()
        result.activity.busyNanoseconds = 100_000
        timeline.kernel("first", on: 1, result: result, activity: [])
        timeline.kernel("second", on: 2, result: result, activity: [])
        #expect(timeline.now == 200_000)
    }

    @Test("Two batches run one after the other; a fault's eviction comes before its migration")
    func evictionChain() {
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        timeline.addDevice(id: 1, name: "sim0")
        timeline.kernel("k", on: 1, result: KernelResult(faults: 2), activity: [
            .deviceFault(deviceID: 1, address: 0x1000, access: .write, batch: 1),
            .migration(from: .system, to: .device(1), bytes: 4096, cause: .deviceFault),
            .deviceFault(deviceID: 1, address: 0x2000, access: .atomic, batch: 2),
            .migration(from: .device(1), to: .system, bytes: 4096, cause: .eviction),
            .migration(from: .system, to: .device(1), bytes: 4096, cause: .deviceFault),
        ])
        // A 4 KiB copy alone: (4 096 + 8 192) / 31.5 = 390.1 → 391 ns, + 1 µs.
        let copy: UInt64 = 391 + 1_000
        #expect(timeline.now == (45_000 + copy) + (45_000 + copy + copy))
        let device = timeline.deviceStatistics[0]
        #expect(device.evictions == 1 && device.faults.atomic == 1 && device.migrationsToSystem == 1)
    }

    @Test("A CPU phase: each CPU fault's latency and copy back, then the bytes at CPU speed")
    func cpuPhase() {
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        timeline.addDevice(id: 1, name: "sim0")
        timeline.cpu("check", bytes: 1 << 20, activity: [
            .migration(from: .device(1), to: .system, bytes: Self.twoMiB, cause: .cpuFault)
        ])
        // 20 µs, then (2 MiB + 8 KiB) / 31.5 = 66 836.3 → 66 837 ns + 1 µs, then
        // 1 MiB / 10 bytes/ns = 104 857.6 → 104 858 ns.
        #expect(timeline.now == 20_000 + 66_837 + 1_000 + 104_858)
        #expect(timeline.linkStatistics[0].deviceToHost.bytes == Self.twoMiB)
    }

    @Test("Remote accesses cross the link while the kernel executes; the later of the two ends it")
    func remoteAccesses() {
        let timeline = SimulatedTimeline(parameters: TimingParameters())
        timeline.addDevice(id: 1, name: "sim0")
        var result = KernelResult()
        result.activity.busyNanoseconds = 100
        result.activity.systemBytesRead = 31_500 - 8_192
        timeline.kernel("k", on: 1, result: result, activity: [])
        // 31 500 bytes of work at 31.5 bytes/ns: 1 000 ns, + 1 µs; execution took 100 ns.
        #expect(timeline.now == 2_000)
        #expect(timeline.deviceStatistics[0].remoteBytesRead == 31_500 - 8_192)
    }
}
