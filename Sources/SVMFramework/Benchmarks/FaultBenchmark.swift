import Glibc
import SVMPluginKit

/// Measures the fault paths of the SVM core on one device: a device fault that migrates a
/// chunk to device memory, and the CPU fault that migrates it back, against `memcpy` of the
/// same bytes and a bare `UFFDIO_MOVE` of them (``MoveFloor``), measured in the same run. Prints numbers; asserts nothing (the machine is
/// shared and noisy, so the numbers are medians and ratios).
public struct FaultBenchmark: Sendable {
    /// Faults measured per chunk size.
    public var iterations: Int
    /// Repetitions of the one-2-MiB-fault against 512-4-KiB-faults comparison.
    public var comparisonRepetitions: Int
    public var chunkSizes: [UInt64] = [4 << 10, 64 << 10, 2 << 20]
    /// Run every thread of the measurement on this CPU alone (see ``CPUAffinity``), or
    /// leave them where the scheduler puts them (`nil`). On one CPU a CPU fault's two
    /// wake-ups cost a thread switch, not an interrupt to another (virtual) CPU.
    public var cpu: Int?
    /// Where the CPU mirror's handler thread runs, in the contexts measured and in the bare
    /// round trip they are compared with (``CPUFaultFloor``).
    public var handlerPlacement: HandlerPlacement = .scheduler

    public init(iterations: Int = 64, comparisonRepetitions: Int = 16) {
        self.iterations = iterations
        self.comparisonRepetitions = comparisonRepetitions
    }

    /// The numbers for one chunk size, in nanoseconds.
    public struct ChunkResult: Codable, Sendable, Hashable {
        public var chunkBytes: UInt64
        /// Median service time of a device fault that migrates the chunk to device memory.
        public var deviceFaultNs: Int
        /// Median `memcpy` of the chunk between two populated buffers.
        public var memcpyNs: Int
        /// `deviceFaultNs - memcpyNs`: what the framework adds to the copy.
        public var deviceFaultOverheadNs: Int
        /// Median `memcpy` of the chunk from memory that is not in the CPU caches into
        /// populated memory not in them either: what a migration's copy meets (the data
        /// migrated was written long before). `memcpyNs` copies between two buffers kept hot.
        public var memcpyColdNs: Int
        /// `deviceFaultNs - memcpyColdNs`.
        public var deviceFaultOverheadColdNs: Int
        /// Median time of a CPU read that faults the chunk back to system memory.
        public var cpuFaultNs: Int
        /// Median `memcpy` of the chunk into freshly mapped memory (page faults included).
        public var memcpyFreshNs: Int
        /// `cpuFaultNs / memcpyFreshNs`.
        public var cpuFaultToFreshMemcpy: Double
        /// Median bare `UFFDIO_MOVE` of the chunk between two areas registered with one
        /// userfaultfd (``MoveFloor``): the floor of a migration that moves pages.
        public var moveFloorNs: Int
        /// `deviceFaultNs / moveFloorNs`.
        public var deviceFaultToMoveFloor: Double
        /// `cpuFaultNs / moveFloorNs`.
        public var cpuFaultToMoveFloor: Double
        /// Median CPU fault served by a bare userfaultfd handler thread with one
        /// `UFFDIO_MOVE` of the chunk (``CPUFaultFloor``): the floor of any CPU fault a
        /// userfaultfd serves, thread switches and TLB shootdown included.
        public var cpuFaultFloorNs: Int
        /// `cpuFaultNs / cpuFaultFloorNs`.
        public var cpuFaultToCPUFaultFloor: Double
    }

    public struct Report: Codable, Sendable {
        public var device: String
        public var iterations: Int
        public var chunks: [ChunkResult]
        /// Median time to fault in 2 MiB as one 2 MiB fault, over repetitions on 2 MiB of
        /// their own in one context (each side in a context of its own).
        public var oneTwoMiBFaultNs: Int
        /// Median time to fault in the same 2 MiB as 512 faults of 4 KiB, likewise.
        public var fiveHundredTwelve4KiBFaultsNs: Int
        public var manySmallToOneLarge: Double
        /// 2 MiB from device to device, when the plugin has two devices with a peer path.
        public var deviceToDevice: DeviceToDeviceBenchmark.Report?
        /// The CPU every thread ran on, or `nil` when they could run on several: read from
        /// the measuring thread's affinity during the run, so it is also set for a process
        /// started on one CPU (`taskset -c 0`).
        public var cpu: Int?
        /// Where the CPU fault handlers ran (``FaultBenchmark/handlerPlacement``).
        public var handlerPlacement: HandlerPlacement
        public var statistics: [String: Int]
    }

    /// Runs the benchmark on device `index` of `plugin`, loaded in `host`; on ``cpu``
    /// alone when it is set.
    /// - Throws: ``CPUAffinity/Failure`` when ``cpu`` is not one the process may run on.
    public func run(host: PluginHost, plugin: String, index: Int = 0) throws -> Report {
        guard let cpu else { return try runHere(host: host, plugin: plugin, index: index) }
        return try CPUAffinity.pinned(to: cpu) { try runHere(host: host, plugin: plugin, index: index) }
    }

    private func runHere(host: PluginHost, plugin: String, index: Int) throws -> Report {
        let allowed = try CPUAffinity.allowed()
        let onlyCPU = allowed.count == 1 ? allowed[0] : nil
        var chunks: [ChunkResult] = []
        var statistics: [String: Int] = [:]
        var deviceName = plugin
        for chunk in chunkSizes {
            let (result, name, counts) = try measure(chunk: chunk, host: host, plugin: plugin, index: index)
            chunks.append(result)
            deviceName = name
            statistics.merge(counts, uniquingKeysWith: +)
        }
        let (large, small) = try faultIn(host: host, plugin: plugin, index: index)
        let (oneLarge, manySmall) = (Self.median(large), Self.median(small))
        let deviceToDevice = chunkSizes.contains(2 << 20) ? try DeviceToDeviceBenchmark(iterations: iterations).run(host: host, plugin: plugin) : nil
        return Report(
            device: deviceName, iterations: iterations, chunks: chunks, oneTwoMiBFaultNs: oneLarge,
            fiveHundredTwelve4KiBFaultsNs: manySmall, manySmallToOneLarge: Double(manySmall) / Double(max(oneLarge, 1)),
            deviceToDevice: deviceToDevice, cpu: onlyCPU, handlerPlacement: handlerPlacement, statistics: statistics)
    }

    /// A context whose ranges are exactly `chunk` bytes, with the device open in it.
    private func context(chunk: UInt64, host: PluginHost, plugin: String, index: Int) throws -> (SVMContext, SVMDevice) {
        let sizes = chunk == 4096 ? [chunk] : [chunk, 4096]
        let configuration = try SVMConfiguration(chunkSizes: sizes, checkPagesThreshold: 0)
        let context = SVMContext(configuration: configuration, host: host, handlerPlacement: handlerPlacement)
        if let reason = context.mirrorUnavailableReason { throw BenchmarkError(message: reason) }
        return (context, try context.openDevice(plugin: plugin, index: index))
    }

    private func measure(chunk: UInt64, host: PluginHost, plugin: String, index: Int) throws
        -> (ChunkResult, String, [String: Int])
    {
        let (context, device) = try context(chunk: chunk, host: host, plugin: plugin, index: index)
        let size = Int(chunk) * iterations
        let buffer = try BenchmarkBuffer(size: size, alignment: Int(chunk))
        // The device goes before the memory: unmapping device-resident memory first would
        // race the device's close.
        defer { withExtendedLifetime(buffer) { context.close(device); context.shutdown() } }
        let moveFloorSession = try MoveFloor(bytes: Int(chunk), count: iterations).prepare()
        buffer.populate()
        // Warm-up round trip: the first use of device memory and of staging pages costs page
        // faults of the simulated device's backing memory, which is not what is measured.
        // The floor's chunks make theirs alongside, chunk by chunk: when both are timed, the
        // pages of both were last touched equally long ago. (A move reads and writes each
        // page's `struct page`; moved again at once, a 2 MiB chunk moved in 31–38 us against
        // 40–65 us the first time after the device faults, measured while writing this.)
        for i in 0..<iterations {
            try context.handleDeviceFault(hostDevice: device.deviceID, address: buffer.address + UInt64(i) * chunk, access: .read)
            try moveFloorSession.roundTrip(chunk: i, there: true)
        }
        for i in 0..<iterations {
            buffer.touch(offset: i * Int(chunk))
            try moveFloorSession.roundTrip(chunk: i, there: false)
        }
        let warmUp = context.statistics.migrationsToDevice.load(ordering: .relaxed)
        let (moveFloors, deviceFaults) = try Self.alternating(count: iterations, first: { try moveFloorSession.time(chunk: $0) }) { i in
            let address = buffer.address + UInt64(i) * chunk
            let start = Self.now()
            try context.handleDeviceFault(hostDevice: device.deviceID, address: address, access: .read)
            return Self.now() - start
        }
        try moveFloorSession.verify()
        let migrated = context.statistics.migrationsToDevice.load(ordering: .relaxed) - warmUp
        guard warmUp == iterations, migrated == iterations else {
            throw BenchmarkError(message: "only \(migrated) of \(iterations) faults migrated to device memory; is the device memory large enough?")
        }
        // The same for CPU faults and their floor, a bare userfaultfd round trip, which moves
        // the chunks the move floor moved, as the CPU faults move back those the device
        // faults moved.
        let cpuFaultFloorSession = try CPUFaultFloor(bytes: Int(chunk), count: iterations, placement: handlerPlacement).prepare(after: moveFloorSession)
        let (cpuFaultFloors, cpuFaults) = Self.alternating(count: iterations, first: { cpuFaultFloorSession.time(chunk: $0) }) { i in
            let start = Self.now()
            buffer.touch(offset: i * Int(chunk))
            return Self.now() - start
        }
        try cpuFaultFloorSession.finish()
        let memcpy = Self.median(Self.memcpyTimes(bytes: Int(chunk), count: iterations, fresh: false))
        let fresh = Self.median(Self.memcpyTimes(bytes: Int(chunk), count: iterations, fresh: true))
        let cold = Self.median(try Self.coldMemcpyTimes(bytes: Int(chunk), count: iterations))
        let moveFloor = Self.median(moveFloors)
        let cpuFaultFloor = Self.median(cpuFaultFloors)
        let deviceFault = Self.median(deviceFaults)
        let cpuFault = Self.median(cpuFaults)
        let result = ChunkResult(
            chunkBytes: chunk, deviceFaultNs: deviceFault, memcpyNs: memcpy, deviceFaultOverheadNs: deviceFault - memcpy,
            memcpyColdNs: cold, deviceFaultOverheadColdNs: deviceFault - cold,
            cpuFaultNs: cpuFault, memcpyFreshNs: fresh, cpuFaultToFreshMemcpy: Double(cpuFault) / Double(max(fresh, 1)),
            moveFloorNs: moveFloor, deviceFaultToMoveFloor: Double(deviceFault) / Double(max(moveFloor, 1)),
            cpuFaultToMoveFloor: Double(cpuFault) / Double(max(moveFloor, 1)),
            cpuFaultFloorNs: cpuFaultFloor, cpuFaultToCPUFaultFloor: Double(cpuFault) / Double(max(cpuFaultFloor, 1)))
        return (result, device.name, context.statistics.snapshot)
    }

    /// Times to fault in 2 MiB as one fault of 2 MiB (`large`) and as 512 faults of 4 KiB
    /// (`small`): one time per repetition and side, each on 2 MiB of its own, each side in
    /// one context of its own for all its repetitions, the two sides taking turns in blocks
    /// of repetitions (a drift of the machine's speed meets both, as in
    /// ``alternating(count:first:then:)``).
    ///
    /// Why one context per side for all repetitions: the first fault of a context pays once
    /// for what later faults share (its first device-memory blocks, the device's first
    /// page-table pages, the TLBs of CPUs that ran its threads, the runtime's first use of
    /// the types on the path): 150–600 µs for the first fault here and still about 100 µs
    /// more for the second. 512 faults of 4 KiB spread that over 512; one fault of 2 MiB in a
    /// context of its own would carry all of it, and the comparison would measure the set-up,
    /// not the size of a fault. The median leaves the first repetition out.
    private func faultIn(host: PluginHost, plugin: String, index: Int) throws -> (large: [Int], small: [Int]) {
        guard comparisonRepetitions > 0 else { return ([], []) }
        // Two contexts on one host at once (see SVMContext.init): safe here, where every
        // fault is this code's call and no device has a peer.
        let large = try FaultInSide(chunk: 2 << 20, repetitions: comparisonRepetitions, benchmark: self, host: host, plugin: plugin, index: index)
        let small = try FaultInSide(chunk: 4 << 10, repetitions: comparisonRepetitions, benchmark: self, host: host, plugin: plugin, index: index)
        defer { small.close(); large.close() }
        // In blocks, as floors and faults: a 2 MiB fault right after 512 faults of the other
        // side met caches those had filled, and took a third longer than after one of its own.
        let (largeTimes, smallTimes) = try Self.alternating(count: comparisonRepetitions, first: { try large.faultIn($0) }) {
            try small.faultIn($0)
        }
        return (largeTimes, smallTimes)
    }

    /// One side of the comparison: a context whose ranges are `chunk` bytes, with the device
    /// open in it, and a 2 MiB buffer for each repetition.
    private final class FaultInSide {
        let chunk: UInt64
        let context: SVMContext
        let device: SVMDevice
        /// Every buffer stays mapped until the end: an unmap would make the mirror's handler
        /// discard the range while the next repetition is timed.
        let buffers: [BenchmarkBuffer]

        init(chunk: UInt64, repetitions: Int, benchmark: FaultBenchmark, host: PluginHost, plugin: String, index: Int) throws {
            self.chunk = chunk
            // The buffers first: a failure to map one then leaves no context to close.
            buffers = try (0..<repetitions).map { _ in try BenchmarkBuffer(size: 2 << 20, alignment: 2 << 20) }
            (context, device) = try benchmark.context(chunk: chunk, host: host, plugin: plugin, index: index)
        }

        /// Faults in buffer `repetition`, one fault per chunk; the nanoseconds.
        func faultIn(_ repetition: Int) throws -> Int {
            let buffer = buffers[repetition]
            buffer.populate()
            let start = FaultBenchmark.now()
            var offset: UInt64 = 0
            while offset < 2 << 20 {
                try context.handleDeviceFault(hostDevice: device.deviceID, address: buffer.address + offset, access: .read)
                offset += chunk
            }
            return FaultBenchmark.now() - start
        }

        /// Closes the device, then the context (the buffers are unmapped after both).
        func close() {
            withExtendedLifetime(buffers) {
                context.close(device)
                context.shutdown()
            }
        }
    }

    static func memcpyTimes(bytes: Int, count: Int, fresh: Bool) -> [Int] {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { source.deallocate() }
        memset(source, 0x5a, bytes)
        let warm = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { warm.deallocate() }
        memset(warm, 0, bytes)
        var times: [Int] = []
        for _ in 0..<count {
            if fresh {
                let target = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
                let start = now()
                memcpy(target, source, bytes)
                times.append(now() - start)
                munmap(target, bytes)
            } else {
                let start = now()
                memcpy(warm, source, bytes)
                times.append(now() - start)
            }
        }
        return times
    }

    /// `count` copies of `bytes`, each from and to bytes not touched since two buffers far
    /// larger than the CPU caches (at least 64 MiB) were populated.
    static func coldMemcpyTimes(bytes: Int, count: Int) throws -> [Int] {
        let stride = max(bytes, (64 << 20) / count) / bytes * bytes
        let source = try BenchmarkBuffer(size: stride * count, alignment: bytes)
        let target = try BenchmarkBuffer(size: stride * count, alignment: bytes)
        source.populate()
        target.populate()
        return (0..<count).map { i in
            let start = now()
            memcpy(target.base + i * stride, source.base + i * stride, bytes)
            return now() - start
        }
    }

    /// Floors and the faults they are the floor of alternate in blocks of this many: near
    /// enough in time that a drift of the shared machine's speed meets both (floors timed in
    /// a block of their own, before or after, moved a ratio by 30% between runs), and long
    /// enough that the floor's operations run back to back, as a bare loop of them does (a
    /// move timed alone right after each fault found the kernel's caches cold and took 50%
    /// longer at 4 KiB, which would flatter the ratio).
    static let alternationBlock = 8

    /// Two series of `count` times taken in turns, in blocks of ``alternationBlock``:
    /// `first(i)` for the indices of a block, then `then(i)` for the same indices, block
    /// after block (a floor and the faults it is the floor of, or the two sides of a
    /// comparison). Each series in index order.
    static func alternating(
        count: Int, first: (Int) throws -> Int, then: (Int) throws -> Int
    ) rethrows -> (first: [Int], then: [Int]) {
        var firsts: [Int] = []
        var thens: [Int] = []
        firsts.reserveCapacity(count)
        thens.reserveCapacity(count)
        for block in stride(from: 0, to: count, by: alternationBlock) {
            let indices = block..<min(block + alternationBlock, count)
            for i in indices { firsts.append(try first(i)) }
            for i in indices { thens.append(try then(i)) }
        }
        return (firsts, thens)
    }

    static func median(_ values: [Int]) -> Int {
        guard !values.isEmpty else { return 0 }
        return values.sorted()[values.count / 2]
    }

    static func now() -> Int { Int(monotonicNanoseconds()) }
}

public struct BenchmarkError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
