import Glibc
@testable import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// Several SimDevices on one address space, in P2PFabric's topologies: the paths the fabric
/// answers through the ABI, the owner groups they make, and migrations between devices,
/// directly over a peer path or through system memory (IGT `xe_multigpu_svm`'s behaviours,
/// written anew).
@Suite("Many devices") struct ManyDevicesTests {
    static let chunk = 2 << 20

    enum Shape: String, CaseIterable, Codable, Sendable, CustomTestStringConvertible {
        case fabric, pcie, none
        var testDescription: String { rawValue }
        var hasPeers: Bool { self != .none }
    }

    func fabric(_ options: [String: String]) throws -> any Interconnect {
        let host = makeHost(options: ["P2PFabric": options])
        #expect(host.failures.isEmpty, "\(host.failures)")
        return try #require(host.plugin(named: "P2PFabric")?.interconnect)
    }

    @Test("P2PFabric answers paths through the ABI: a fabric link, PCIe P2P through the switch, or ENOLINK across root ports")
    func fabricPaths() throws {
        let fabric = try fabric(["topology": "fabric", "devices": "4"])
        let direct = try #require(try fabric.path(from: "sim:0", to: "sim:3"))
        #expect(direct.linkProtocol == .fabric && direct.hops.map(\.name) == ["sim:0-sim:3"])
        #expect(direct.bandwidthBytesPerSecond == 25_000_000_000 && direct.latencyNanoseconds == 700)
        // A root-to-switch uplink, four device links and six fabric links.
        #expect(try fabric.links().count == 11)
        #expect(try fabric.links().filter { $0.kind == .pcie }.allSatisfy { $0.pcieGeneration == 4 && $0.lanes == 16 })

        let pcie = try self.fabric(["topology": "pcie", "devices": "4", "pcie-generation": "5"])
        let switched = try #require(try pcie.path(from: "sim:1", to: "sim:2"))
        #expect(switched.linkProtocol == .pciePeerToPeer)
        #expect(switched.hops.map(\.name) == ["switch0-sim:1", "switch0-sim:2"])
        // Gen5 x16: 32 GT/s x 16 lanes x 128/130 / 8 bits.
        #expect(switched.bandwidthBytesPerSecond == 63_015_384_615 && switched.latencyNanoseconds == 1_000)
        #expect(try pcie.links().count == 5)

        let none = try self.fabric(["topology": "none", "devices": "4"])
        #expect(try none.path(from: "sim:0", to: "sim:1") == nil, "no P2P across root ports")
        #expect(try none.links().count == 4)
        #expect(throws: PluginErrno.noDevice) { try none.path(from: "sim:0", to: "sim:9") }
        #expect(throws: PluginErrno.noDevice) { try none.path(from: "0000:03:00.0", to: "sim:1") }

        let bad = makeHost(options: ["P2PFabric": ["topology": "ring"]])
        #expect(bad.failures.first?.explanation.contains("P2PFabric.topology=ring") == true, "\(bad.failures)")
        let tooMany = makeHost(options: ["P2PFabric": ["devices": "0"]])
        #expect(tooMany.failures.first?.explanation.contains("P2PFabric.devices=0") == true, "\(tooMany.failures)")
    }

    @Test("Devices joined by peer paths form one owner group; across root ports each is alone", arguments: Shape.allCases)
    func ownerGroups(shape: Shape) throws {
        let f = try SimDeviceFixture(devices: 4, memory: "8M", interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        let ids = f.devices.map(\.deviceID)
        let topology = f.context.topology
        #expect(f.context.topologyProblems.isEmpty, "\(f.context.topologyProblems)")
        #expect(topology.ownerGroups == (shape.hasPeers ? [ids] : ids.map { [$0] }))
        for (a, b) in f.orderedPairs {
            let path = topology.path(from: a.deviceID, to: b.deviceID)
            #expect((path != nil) == shape.hasPeers, "\(a.name) → \(b.name)")
            #expect(a.pagemap.peerPath(to: b.deviceID) == path)
            if let path { #expect(path.linkProtocol == (shape == .fabric ? .fabric : .pciePeerToPeer)) }
        }
        // A closed device leaves the topology and its peers' pagemaps.
        f.context.close(f.devices[3])
        #expect(f.context.topology.devices.map(\.id) == Array(ids.prefix(3)))
        #expect(f.devices[0].pagemap.peerPath(to: ids[3]) == nil)
    }

    /// system → A → B → system for every ordered pair, the data checked after each step: one
    /// direct move from A to B with a peer path, through system memory without one.
    /// Each device's host traffic crosses its PCIe links up to the root complex: through the
    /// switch and its uplink (which the devices share), or its own root port.
    @Test("A device's host route: its PCIe links up to the root complex", arguments: Shape.allCases)
    func hostRoutes(shape: Shape) throws {
        let f = try SimDeviceFixture(devices: 2, memory: "8M", interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        let topology = f.context.topology
        for (index, device) in f.devices.enumerated() {
            let names = topology.hostRoute(of: device.deviceID)?.map(\.name)
            #expect(names == (shape == .none ? ["root-sim:\(index)"] : ["switch0-sim:\(index)", "root-switch0"]), "\(shape)")
        }
        // A cycle in a plugin's links cannot hang the walk up.
        let loop = [
            TopologyLink(kind: .pcie, name: "a", endA: "x", endB: "y", bandwidthBytesPerSecond: 1, latencyNanoseconds: 1, lanes: 1, pcieGeneration: 4),
            TopologyLink(kind: .pcie, name: "b", endA: "y", endB: "x", bandwidthBytesPerSecond: 1, latencyNanoseconds: 1, lanes: 1, pcieGeneration: 4),
        ]
        #expect(DeviceTopology.routeToRoot(from: "x", over: loop).count == 16)
        #expect(DeviceTopology.routeToRoot(from: "nowhere", over: loop).isEmpty)
    }

    /// Devices of different plugins are not an owner group unless an interconnect gives them
    /// a path: the C example plugin's device has no location P2PFabric knows, so a range
    /// travels between it and a SimDevice through system memory, data intact, even with
    /// policy `peer` (no path, no in-place mapping).
    @Test("Devices of different plugins without a path: separate owner groups, migration through system memory", arguments: [MigrationPolicy.migrateOnDeviceFault, .accessPeerInPlace])
    func peersAcrossPlugins(policy: MigrationPolicy) throws {
        let folder = try TemporaryDirectory()
        try CPluginCompiler.compile(defines: ["EXAMPLE_DEVICE_MEMORY"], output: folder.file("libexample.so"))
        let host = makeHost(paths: [folder.file("libexample.so")], options: ["ExampleC": ["memory-mib": "16"], "SimDevice": ["memory": "8M"]])
        let context = SVMContext(policy: policy, host: host)
        let sim = try context.openDevice(plugin: "SimDevice")
        let c = try context.openDevice(plugin: "ExampleC")
        defer {
            context.close(c)
            context.close(sim)
            context.shutdown()
        }
        let topology = context.topology
        #expect(topology.ownerGroups == [[sim.deviceID], [c.deviceID]])
        #expect(topology.path(from: sim.deviceID, to: c.deviceID) == nil && topology.path(from: c.deviceID, to: sim.deviceID) == nil)
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 31)
        var bytes = [UInt8](repeating: 0, count: 64)
        let read = try bytes.withUnsafeMutableBytes { host in
            try sim.run(.read(source: buffer.address, size: 64, hostBuffer: UInt64(UInt(bitPattern: host.baseAddress!))))
        }
        #expect(read.stoppedBy == nil && context.space.range(containing: buffer.address)?.residency.current.location == .device(sim.pagemap))
        // The C device's fault (the host services it) takes the range from SimDevice's memory.
        try context.handleDeviceFault(hostDevice: c.deviceID, address: buffer.address, access: .write)
        #expect(context.space.range(containing: buffer.address)?.residency.current.location == .device(c.pagemap))
        let statistics = context.statistics.snapshot
        #expect(statistics["migrationsBetweenDevices"] == 1 && statistics["peerMigrations"] == 0 && statistics["peerMappings"] == 0)
        #expect(buffer.mismatches(seed: 31) == 0, "the data came back intact through system memory")
    }

    @Test(arguments: [2, 4], Shape.allCases)
    func migrationsBetweenEveryPair(devices count: Int, shape: Shape) throws {
        for path in [MigrationPath.zeroCopy, .copy] {
            let f = try SimDeviceFixture(
                devices: count, memory: "8M", options: path.options, interconnect: ["topology": shape.rawValue])
            defer { f.shutdown() }
            f.context.activity.enable()
            let buffer = MappedBuffer(size: Self.chunk)
            var seed: UInt8 = 1
            for (a, b) in f.orderedPairs {
                seed &+= 1
                buffer.fill(seed: seed)
                let pair = "\(path.rawValue) \(a.name) → \(b.name)"
                _ = try f.deviceRead(buffer.address, 64, on: a)
                let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk, on: b)
                #expect(result.stoppedBy == nil, "\(pair)")
                #expect(f.device(holding: buffer.address) === b, "\(pair): not in the second device's memory")
                #expect(buffer.mismatches(seed: seed) == 0, "\(pair): CPU read")
                // What the device read is what the CPU checked (memcmp: an element-wise
                // comparison of 2 MiB costs a second in a debug build).
                #expect(memcmp(bytes, buffer.base, Self.chunk) == 0, "\(pair): device read")
                let migrations = f.context.activity.drain().filter { if case .migration = $0 { true } else { false } }
                let (idA, idB) = (a.deviceID, b.deviceID)
                let route: SVMActivityLog.Route = shape.hasPeers ? .peer(try #require(a.pagemap.peerPath(to: idB))) : .throughSystem
                let bytes64 = UInt64(Self.chunk)
                #expect(migrations == [
                    .migration(from: .system, to: .device(idA), bytes: bytes64, cause: .deviceFault),
                    .migration(from: .device(idA), to: .device(idB), bytes: bytes64, cause: .deviceFault, route: route),
                    .migration(from: .device(idB), to: .system, bytes: bytes64, cause: .cpuFault),
                ], "\(pair)")
                #expect(migrations.count != 3 || migrations[1].legs.map(\.deviceID) == (shape.hasPeers ? [] : [idA, idB]), "\(pair)")
            }
            let pairs = count * (count - 1)
            #expect(f.count("migrationsBetweenDevices") == pairs)
            #expect(f.count("peerMigrations") == (shape.hasPeers ? pairs : 0))
            path.checkUsed(f, exclusively: false)
            #expect(f.devices.allSatisfy { $0.usedDeviceMemory == 0 })
        }
    }

    @Test("Atomic increments from both devices of every ordered pair in turn: exact values, the data travelling directly between them", arguments: [2, 4], Shape.allCases)
    func atomicsFromBothDevicesInTurn(devices count: Int, shape: Shape) throws {
        let f = try SimDeviceFixture(devices: count, memory: "8M", interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        memset(buffer.base, 0, Self.chunk)
        let rounds = 4
        var kernels = 0
        for (a, b) in f.orderedPairs {
            for round in 0..<rounds {
                try f.run(.increment(destination: buffer.address, size: UInt64(Self.chunk), addend: 3), on: round % 2 == 0 ? a : b)
                kernels += 1
            }
            // Exact after every pair (the CPU's read brings the range home).
            let values = buffer.base.assumingMemoryBound(to: UInt32.self)
            let wrong = (0..<Self.chunk / 4).filter { values[$0] != UInt32(3 * kernels) }
            #expect(wrong.isEmpty, "\(a.name)/\(b.name): \(wrong.count) wrong values, the first \(wrong.first.map { values[$0] } ?? 0)")
        }
        let pairs = count * (count - 1)
        #expect(f.count("peerMigrations") == (shape.hasPeers ? pairs * (rounds - 1) : 0))
    }

    /// Policy `peer` for every ordered pair: the second device reads the first's memory in
    /// place (no migration), writes into it, and the first device and the CPU see the write.
    @Test("Every ordered pair with policy peer: access in place, coherent for both devices and the CPU", arguments: [2, 4], [Shape.fabric, .pcie])
    func peerAccessEveryPair(devices count: Int, shape: Shape) throws {
        let f = try SimDeviceFixture(devices: count, memory: "8M", policy: .accessPeerInPlace, interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        var seed: UInt8 = 50
        for (a, b) in f.orderedPairs {
            seed &+= 1
            buffer.fill(seed: seed)
            let pair = "\(a.name) → \(b.name)"
            _ = try f.deviceRead(buffer.address, 64, on: a)
            let (bytes, read) = try f.deviceRead(buffer.address, 4096, on: b)
            #expect(read.stoppedBy == nil && read.faults > 0 && read.activity.peerBytesRead == 4096, "\(pair): a fault on the peer, then in place")
            #expect(MappedBuffer.holdsPattern(bytes, seed: seed) && f.device(holding: buffer.address) === a, "\(pair)")
            let written = [UInt8](repeating: seed, count: 64)
            let write = try f.deviceWrite(buffer.address + 4096, written, on: b)
            #expect(write.stoppedBy == nil && write.activity.peerBytesWritten == 64, "\(pair)")
            let (seen, _) = try f.deviceRead(buffer.address + 4096, 64, on: a)
            #expect(seen == written, "\(pair): the owner sees the peer's write")
            #expect(buffer.bytes(at: 4096, count: 64) == written, "\(pair): the CPU sees it")
        }
        #expect(f.count("peerMigrations") == 0 && f.count("peerMappings") == count * (count - 1))
    }

    /// Policy `peer`: a device reads and writes a peer's memory in place over their path
    /// instead of migrating; both devices and the CPU see every write; a migration away zaps
    /// the importer's mapping; atomics and devices without a path still migrate.
    @Test(arguments: [Shape.fabric, .pcie, .none])
    func peerMapping(shape: Shape) throws {
        let f = try SimDeviceFixture(devices: 2, memory: "8M", policy: .accessPeerInPlace, interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        let (a, b) = (f.devices[0], f.devices[1])
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 21)
        _ = try f.deviceRead(buffer.address, 64, on: a)
        #expect(f.device(holding: buffer.address) === a)
        let (bytes, read) = try f.deviceRead(buffer.address, Self.chunk, on: b)
        #expect(read.stoppedBy == nil && MappedBuffer.holdsPattern(bytes, seed: 21))
        guard shape.hasPeers else {
            // No path: the data migrates, through system memory.
            #expect(f.device(holding: buffer.address) === b && f.count("peerMappings") == 0)
            return
        }
        #expect(f.device(holding: buffer.address) === a, "mapped in place, not migrated")
        #expect(f.count("peerMappings") == 1 && f.count("migrationsBetweenDevices") == 0)
        #expect(read.activity.peerBytesRead == UInt64(Self.chunk) && read.activity.localBytes == 0)
        // B writes into A's memory; A and the CPU see it.
        let written = [UInt8](repeating: 0x5a, count: 4096)
        let write = try f.deviceWrite(buffer.address + 8192, written, on: b)
        #expect(write.stoppedBy == nil && write.activity.peerBytesWritten == 4096 && write.faults == 0, "already mapped writable")
        let (seen, _) = try f.deviceRead(buffer.address + 8192, 4096, on: a)
        #expect(seen == written)
        #expect(f.device(holding: buffer.address) === a && f.count("migrationsBetweenDevices") == 0)
        // The CPU takes the data home: B's mapping of A's memory goes with it.
        #expect(buffer.base.load(fromByteOffset: 8192, as: UInt8.self) == 0x5a)
        #expect(f.device(holding: buffer.address) == nil)
        let (again, refault) = try f.deviceRead(buffer.address, 4096, on: b)
        #expect(refault.faults > 0 && MappedBuffer.holdsPattern(again, seed: 21))
        #expect(f.device(holding: buffer.address) === b, "from system memory the policy migrates")
        // A reads B's memory in place; an atomic needs local memory: A's migrates the range.
        _ = try f.deviceRead(buffer.address, 64, on: a)
        #expect(f.device(holding: buffer.address) === b && f.count("peerMappings") == 2)
        try f.run(.increment(destination: buffer.address, size: 4096, addend: 1), on: a)
        #expect(f.device(holding: buffer.address) === a && f.count("peerMigrations") == 1)
    }

    /// IGT's prefetch to a peer: device A prefetches a buffer into device B's memory (every
    /// ordered pair), then reads and writes it without a single fault, over the peer path;
    /// B and the CPU see A's writes. Prefetching into its own memory works the same, and a
    /// peer without a path is refused with ENOLINK before anything moves.
    @Test(arguments: [2, 4], [Shape.fabric, .pcie])
    func prefetchToAPeerThenAccessWithoutFaults(devices count: Int, shape: Shape) throws {
        let f = try SimDeviceFixture(devices: count, memory: "8M", interconnect: ["topology": shape.rawValue])
        defer { f.shutdown() }
        for (index, (a, b)) in f.orderedPairs.enumerated() {
            let buffer = MappedBuffer(size: 2 * Self.chunk)
            let seed = UInt8(40 + index)
            buffer.fill(seed: seed)
            let interval = AddressInterval(start: buffer.address, end: buffer.address + UInt64(2 * Self.chunk))
            try f.context.prefetch(interval, for: a, into: b)
            #expect(f.device(holding: buffer.address) === b && f.device(holding: buffer.address + UInt64(Self.chunk)) === b)
            let (bytes, read) = try f.deviceRead(buffer.address, 2 * Self.chunk, on: a)
            #expect(read.stoppedBy == nil && read.faults == 0, "\(a.name) faulted \(read.faults) times after the prefetch into \(b.name)")
            #expect(MappedBuffer.holdsPattern(bytes, seed: seed) && read.activity.peerBytesRead == UInt64(2 * Self.chunk))
            let written = [UInt8](repeating: 0xA5, count: 4096)
            let write = try f.deviceWrite(buffer.address + UInt64(Self.chunk), written, on: a)
            #expect(write.stoppedBy == nil && write.faults == 0 && write.activity.peerBytesWritten == 4096)
            let (seen, _) = try f.deviceRead(buffer.address + UInt64(Self.chunk), 4096, on: b)
            #expect(seen == written)
            #expect(buffer.base.load(fromByteOffset: Self.chunk, as: UInt8.self) == 0xA5)
        }
        // Into its own memory: local accesses, no faults.
        let own = MappedBuffer(size: Self.chunk)
        own.fill(seed: 7)
        try f.context.prefetch(AddressInterval(start: own.address, end: own.address + UInt64(Self.chunk)), for: f.devices[0])
        let (bytes, read) = try f.deviceRead(own.address, Self.chunk, on: f.devices[0])
        #expect(read.faults == 0 && read.activity.localBytes == UInt64(Self.chunk) && MappedBuffer.holdsPattern(bytes, seed: 7))
    }

    @Test("A prefetch into a peer without a path is refused with ENOLINK, and nothing moves")
    func prefetchWithoutAPath() throws {
        let f = try SimDeviceFixture(devices: 2, memory: "8M", interconnect: ["topology": "none"])
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 2)
        let interval = AddressInterval(start: buffer.address, end: buffer.address + UInt64(Self.chunk))
        #expect(throws: PluginErrno.noLink) { try f.context.prefetch(interval, for: f.devices[0], into: f.devices[1]) }
        #expect(f.context.space.range(containing: buffer.address) == nil && f.count("migrationsToDevice") == 0)
        // The documented fallback: the device's own fault migrates it (through system memory).
        let (bytes, read) = try f.deviceRead(buffer.address, Self.chunk, on: f.devices[0])
        #expect(read.faults > 0 && MappedBuffer.holdsPattern(bytes, seed: 2) && f.device(holding: buffer.address) === f.devices[0])
    }

    /// The livelock the xe driver had to fix: two devices' faults on one range, each
    /// migrating it into its own memory just before the other commits, so that neither ever
    /// binds. Here device B's fault runs a pass at the worst moment of every one of A's
    /// commits (after A's migration, before its notifier lock), and takes the range away if
    /// its placement lets it. A fault that keeps losing reserves the range; B's faults then
    /// wait until A has committed. B contends at most `limit` times, so that without the
    /// serialization the test fails (A's fault needs every one of them) instead of hanging.
    @Test(arguments: [DeviceAccess.read, .write, .atomic])
    func racingMigrationsAreSerialized(access: DeviceAccess) throws {
        let f = try SimDeviceFixture(devices: 2, memory: "8M", interconnect: ["topology": "fabric"])
        defer { f.shutdown() }
        // B's atomics want device memory whatever happened before (no thrashing guard, no
        // cap on migrations), and without a timeslice they never hold the range.
        f.context.atomicTimeslice = .zero
        let contender: DeviceAccess = .atomic
        let (a, b) = (f.devices[0], f.devices[1])
        let buffer = MappedBuffer(size: Self.chunk)
        memset(buffer.base, 3, Self.chunk)
        let limit = 100
        let contended = Locked(0)
        f.context.contentionInjection = { [f] device, range in
            guard device === a, contended.withLock({ count in count < limit ? { count += 1; return true }() : false }) else { return }
            // B's fault: a few passes, as one that found the range busy would make.
            for _ in 0..<3 where (try? f.context.faultPath.attemptOnce(device: b, address: range.interval.start, access: contender)) != true {}
        }
        // Read: the bytes come back; write: a fill of 4; atomic: an increment of each
        // 32-bit word, whose low byte becomes 4.
        var read = [UInt8](repeating: 0, count: 4096)
        let result = try read.withUnsafeMutableBytes { host in
            try a.run(
                access.contains(.atomic) ? .increment(destination: buffer.address, size: UInt64(Self.chunk), addend: 1)
                    : access.contains(.write) ? .fill(destination: buffer.address, size: UInt64(Self.chunk), byte: 4)
                    : .read(source: buffer.address, size: 4096, hostBuffer: UInt64(UInt(bitPattern: host.baseAddress!))))
        }
        f.context.contentionInjection = nil
        #expect(result.stoppedBy == nil)
        let times = contended.withLock { $0 }
        #expect(times >= 1, "B never contended: the commit did not run the contention hook")
        // Without the reservation: 100 of 100, and 98 to 200 migrations.
        #expect(times <= DeviceFaultPath.reserveAfterPasses + 1, "B took the range away \(times) times before A committed")
        #expect(f.count("migrationsBetweenDevices") + f.count("migrationsToDevice") <= 2 * (DeviceFaultPath.reserveAfterPasses + 1))
        if access == .read { #expect(read.allSatisfy { $0 == 3 }) }
        #expect(buffer.base.load(as: UInt8.self) == (access == .read ? 3 : 4))
    }

    /// A device that maps a peer's memory in place never reads it wiped: the peer's reset
    /// zaps it first (`report_device_reset_begin`), and until the reset is handled its fault
    /// is answered as on lost data. The read is made at the worst moment: the peer has
    /// wiped its memory and the host has not yet lost the data.
    @Test func peerResetNeverShowsWipedBytes() throws {
        let f = try SimDeviceFixture(
            devices: 2, memory: "8M", policy: .accessPeerInPlace, options: ["reset-after-kernel": "3"],
            interconnect: ["topology": "fabric"])
        defer { f.shutdown() }
        let (a, b) = (f.devices[0], f.devices[1])
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 23)
        _ = try f.deviceRead(buffer.address, 64, on: a)  // A's kernel 1: the range moves to A
        let (mapped, _) = try f.deviceRead(buffer.address, Self.chunk, on: b)  // B's kernel 1: in place
        #expect(MappedBuffer.holdsPattern(mapped, seed: 23) && f.device(holding: buffer.address) === a)
        let during = Locked<(bytes: [UInt8], result: KernelResult)?>(nil)
        f.context.resetInjection.current = { [f] device in
            guard device == a.deviceID, let read = try? f.deviceRead(buffer.address, 4096, on: b) else { return }
            during.withLock { $0 = read }
        }
        _ = try f.deviceRead(buffer.address, 64, on: a)  // A's kernel 2
        _ = try f.deviceRead(buffer.address, 64, on: a)  // A's kernel 3, then A resets
        let read = try #require(during.withLock { $0 }, "no read was made during the reset")
        #expect(read.result.stoppedBy == .ioError, "B read \(read.bytes.prefix(4)) from a memory being wiped")
        #expect(!read.bytes.contains(0xDE), "B saw wiped bytes")
        #expect(f.count("deviceResets") == 1 && f.count("lostRanges") == 1)
    }

    /// Two or four devices incrementing the same range at once, each on its own thread (IGT's
    /// concurrent multi-GPU atomics): every increment lands exactly once, and the range
    /// moves between the devices at most once per kernel, because the atomic timeslice holds
    /// against a peer's fault as against a CPU fault. Without the hold the devices stole the
    /// range from each other within kernels: 69 to 128 migrations for 40 kernels. In a
    /// child process with an alarm, so that a livelock fails the test.
    @Test(arguments: [2, 4], [Shape.fabric, .none])
    func concurrentAtomics(devices count: Int, shape: Shape) async {
        await #expect(processExitsWith: .success) { [count = count as Int, shape = shape as Shape] in
            alarm(300)
            let f = try SimDeviceFixture(devices: count, memory: "8M", interconnect: ["topology": shape.rawValue])
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: ManyDevicesTests.chunk)
            memset(buffer.base, 0, ManyDevicesTests.chunk)
            // The timeslice must outlast a kernel, so that a kernel keeps the range for as
            // long as it runs: several times what one kernel with its migration takes here
            // (a few ms in a debug build, more under ThreadSanitizer), at least 50 ms.
            let started = ContinuousClock.now
            _ = try f.devices[0].run(.increment(destination: buffer.address, size: UInt64(ManyDevicesTests.chunk), addend: 1))
            f.context.atomicTimeslice = max(.milliseconds(50), started.duration(to: .now) * 5)
            // Fewer per device with four: each kernel may wait for the others' timeslices.
            let kernels = count == 2 ? 20 : 8
            let stopped = Locked<[String]>([])
            let threads = f.devices.map { device in
                TestThread {
                    for index in 0..<kernels {
                        do {
                            let result = try device.run(.increment(destination: buffer.address, size: UInt64(ManyDevicesTests.chunk), addend: 1))
                            if let status = result.stoppedBy { stopped.withLock { $0.append("\(device.name) kernel \(index): \(status)") } }
                        } catch {
                            stopped.withLock { $0.append("\(device.name) kernel \(index): \(error)") }
                        }
                    }
                }
            }
            for thread in threads { thread.join() }
            #expect(stopped.withLock { $0 }.isEmpty, "\(stopped.withLock { $0 })")
            let values = buffer.base.assumingMemoryBound(to: UInt32.self)
            let wrong = (0..<ManyDevicesTests.chunk / 4).filter { values[$0] != UInt32(count * kernels + 1) }
            #expect(wrong.isEmpty, "\(wrong.count) wrong values, the first \(wrong.first.map { values[$0] } ?? 0)")
            // At most one migration per kernel and device: no stealing back and forth
            // within a kernel.
            #expect(f.count("migrationsBetweenDevices") <= count * kernels, "\(f.count("migrationsBetweenDevices")) migrations")
        }
    }
}

extension SimDeviceFixture {
    /// Every ordered pair of two different devices, in opening order.
    var orderedPairs: [(SVMDevice, SVMDevice)] {
        devices.flatMap { a in devices.filter { $0 !== a }.map { (a, $0) } }
    }

    /// The device whose memory holds the range containing `address`, if any.
    func device(holding address: UInt64) -> SVMDevice? {
        guard let range = context.space.range(containing: address), case .device(let allocation) = range.residency.current else { return nil }
        return devices.first { $0.pagemap === allocation.pagemap }
    }
}
