import Glibc
import SVMPluginKit

/// Measures a 2 MiB migration from one device's memory to another's, directly over their
/// peer path and through system memory, against a bare `UFFDIO_MOVE` of 2 MiB (``MoveFloor``)
/// measured in the same run. Prints numbers; asserts nothing.
///
/// Each timed fault is on the device that does not hold the range, so each is one
/// device-to-device migration (the range's data is whole: SimDevice's zero-copy moves it
/// block to block, the copy path copies it through a staging slot). For the way through
/// system memory the two pagemaps are made to forget their peer paths, so the same devices
/// and the same memory are compared.
public struct DeviceToDeviceBenchmark: Sendable {
    /// Migrations timed per way.
    public var iterations: Int
    static let chunk: UInt64 = 2 << 20

    public init(iterations: Int) { self.iterations = iterations }

    public struct Report: Codable, Sendable, Hashable {
        /// The two devices, and the protocol of the path between them.
        public var devices: [String]
        public var peerProtocol: LinkProtocol
        /// Median device fault that migrates 2 MiB directly from the other device's memory.
        public var directNs: Int
        /// The same through system memory: back into the CPU pages, then on.
        public var throughSystemNs: Int
        /// Median bare `UFFDIO_MOVE` of 2 MiB.
        public var moveFloorNs: Int
        public var directToMoveFloor: Double
        public var throughSystemToMoveFloor: Double
    }

    /// Runs on devices 0 and 1 of `plugin`; `nil` when the plugin has fewer than two devices
    /// or they have no peer path (no interconnect loaded, or `topology=none`).
    public func run(host: PluginHost, plugin: String) throws -> Report? {
        guard (try? host.plugin(named: plugin)?.device?.deviceCount()) ?? 0 >= 2 else { return nil }
        let configuration = try SVMConfiguration(chunkSizes: [Self.chunk, 4096], checkPagesThreshold: 0)
        let context = SVMContext(configuration: configuration, host: host)
        defer { context.shutdown() }
        if let reason = context.mirrorUnavailableReason { throw BenchmarkError(message: reason) }
        let a = try context.openDevice(plugin: plugin, index: 0)
        let b = try context.openDevice(plugin: plugin, index: 1)
        let buffer = try BenchmarkBuffer(size: Int(Self.chunk) * iterations, alignment: Int(Self.chunk))
        defer { withExtendedLifetime(buffer) { context.close(b); context.close(a) } }
        guard let forward = a.pagemap.peerPath(to: b.deviceID), let backward = b.pagemap.peerPath(to: a.deviceID) else { return nil }
        buffer.populate()
        func fault(_ device: SVMDevice, _ index: Int) throws -> Int {
            let start = FaultBenchmark.now()
            try context.handleDeviceFault(hostDevice: device.deviceID, address: buffer.address + UInt64(index) * Self.chunk, access: .read)
            return FaultBenchmark.now() - start
        }
        // Each block of faults near a block of bare moves of 2 MiB, their floor (as in
        // FaultBenchmark): a chunk of the floor's own for each fault, direct ones first.
        let moveFloor = try MoveFloor(bytes: Int(Self.chunk), count: 2 * iterations).prepare()
        // Warm-up: every chunk into A, over to B and back, so that both memories' pages and
        // page tables exist, as the fault benchmark's warm-up round makes them; the floor's
        // two chunks per fault make their round trips alongside (as in FaultBenchmark).
        for (pass, device) in [a, b, a].enumerated() {
            for index in 0..<iterations {
                _ = try fault(device, index)
                guard pass != 1 else { continue }
                for chunk in [index, iterations + index] { try moveFloor.roundTrip(chunk: chunk, there: pass == 0) }
            }
        }
        let before = context.statistics.peerMigrations.load(ordering: .relaxed)
        let (directFloors, direct) = try FaultBenchmark.alternating(count: iterations, first: { try moveFloor.time(chunk: $0) }) {
            try fault(b, $0)
        }
        guard context.statistics.peerMigrations.load(ordering: .relaxed) - before == iterations else {
            throw BenchmarkError(message: "not every device-to-device fault migrated directly; is the device memory large enough?")
        }
        a.pagemap.setPeerPath(nil, to: b.deviceID)
        b.pagemap.setPeerPath(nil, to: a.deviceID)
        let (systemFloors, throughSystem) = try FaultBenchmark.alternating(
            count: iterations, first: { try moveFloor.time(chunk: iterations + $0) }) { try fault(a, $0) }
        a.pagemap.setPeerPath(forward, to: b.deviceID)
        b.pagemap.setPeerPath(backward, to: a.deviceID)
        try moveFloor.verify()
        let floor = FaultBenchmark.median(directFloors + systemFloors)
        let directNs = FaultBenchmark.median(direct)
        let throughSystemNs = FaultBenchmark.median(throughSystem)
        return Report(
            devices: [a.name, b.name], peerProtocol: forward.linkProtocol, directNs: directNs, throughSystemNs: throughSystemNs,
            moveFloorNs: floor, directToMoveFloor: Double(directNs) / Double(max(floor, 1)),
            throughSystemToMoveFloor: Double(throughSystemNs) / Double(max(floor, 1)))
    }
}
