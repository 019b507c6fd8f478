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
        let path = PeerPath(linkProtocol: .fabric, hops: [
            TopologyLink(kind: .fabric, name: "f", endA: "a", endB: "b", bandwidthBytesPerSecond: 25_000_000_000, latencyNanoseconds: 700, lanes: 4),
        ])
        func batchTime(_ engine: TimingParameters.PeerCopyEngine) -> UInt64 {
            var parameters = TimingParameters()
            parameters.copyEngines = 1
            parameters.peerCopyEngine = engine
            let timeline = SimulatedTimeline(parameters: parameters)
            for id in UInt64(1)...3 { timeline.addDevice(id: id, name: "sim\(id)") }
            timeline.addPeerPath(from: 1, to: 3, path: path)
            timeline.addPeerPath(from: 2, to: 3, path: path)
            timeline.kernel("k", on: 3, result: KernelResult(faults: 2, bytes: 4 << 20), activity: [
                .deviceFault(deviceID: 3, address: 0x1000_0000, access: .read, batch: 1),
                .migration(from: .device(1), to: .device(3), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(path)),
                .deviceFault(deviceID: 3, address: 0x1020_0000, access: .read, batch: 1),
                .migration(from: .device(2), to: .device(3), bytes: Self.twoMiB, cause: .deviceFault, route: .peer(path)),
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
