import Glibc
import SVMPluginKit

/// What `fork()` costs with an SVM context: the fork brings device-resident data home
/// before the address space is copied (`ForkPreparation.swift`). Measured as the median time
/// from `fork()` to the parent's `waitpid` of a child that exits at once: with no context
/// (the floor), with a context and nothing device-resident, and with each of
/// ``residentBytes`` device-resident; against the move floor of the same bytes (a bare
/// `UFFDIO_MOVE` of 2 MiB chunks, ``MoveFloor``), all in one run. Prints numbers, asserts
/// nothing.
public struct ForkBenchmark: Sendable {
    /// Forks timed per case.
    public var repetitions: Int
    /// Device-resident bytes before the fork, one case each; multiples of 2 MiB.
    public var residentBytes: [UInt64] = [2 << 20, 64 << 20]

    public init(repetitions: Int = 16) { self.repetitions = repetitions }

    public struct Report: Codable, Sendable {
        public var device: String
        public var repetitions: Int
        /// Median fork to `waitpid` with no context in the process.
        public var bareForkNs: Int
        /// The same with a context whose device holds nothing.
        public var emptyContextForkNs: Int
        public var resident: [Resident]
        /// The context's counters at the end (``SVMStatistics``): forks prepared, ranges
        /// brought home for them.
        public var statistics: [String: Int]
    }

    /// One case: `bytes` device-resident at the fork.
    public struct Resident: Codable, Sendable, Hashable {
        public var bytes: UInt64
        /// Median fork to `waitpid`, the bringing home included.
        public var forkNs: Int
        /// `forkNs / bareForkNs`.
        public var toBareFork: Double
        /// The move floor of the bytes: the median bare `UFFDIO_MOVE` of 2 MiB, times the
        /// number of 2 MiB chunks.
        public var moveFloorNs: Int
        /// `(forkNs - emptyContextForkNs) / moveFloorNs`: the bringing home against its floor.
        public var homeToMoveFloor: Double
    }

    /// Runs the benchmark on device `index` of `plugin`, loaded in `host`.
    public func run(host: PluginHost, plugin: String, index: Int = 0) throws -> Report {
        let bare = FaultBenchmark.median(try (0..<repetitions).map { _ in try Self.timeFork() })
        let chunk = 2 << 20
        let floor = FaultBenchmark.median(try MoveFloor(bytes: chunk, count: max(repetitions, 8)).times())
        let context = SVMContext(host: host)
        if let reason = context.mirrorUnavailableReason { throw BenchmarkError(message: reason) }
        let device = try context.openDevice(plugin: plugin, index: index)
        defer { context.close(device); context.shutdown() }
        let empty = FaultBenchmark.median(try (0..<repetitions).map { _ in try Self.timeFork() })
        var resident: [Resident] = []
        for bytes in residentBytes {
            let buffer = try BenchmarkBuffer(size: Int(bytes), alignment: chunk)
            defer { withExtendedLifetime(buffer) { context.release(device) } }
            buffer.populate()
            var times: [Int] = []
            for _ in 0..<repetitions {
                // Device-resident again before each fork (the last one brought it home).
                let result = try device.run(.fill(destination: buffer.address, size: bytes, byte: BenchmarkBuffer.pattern))
                if let stop = result.stoppedBy { throw BenchmarkError(message: "the device's kernel stopped: \(stop)") }
                guard device.usedDeviceMemory >= bytes else {
                    throw BenchmarkError(message: "only \(device.usedDeviceMemory) of \(bytes) bytes went to device memory (too little device memory?)")
                }
                times.append(try Self.timeFork())
            }
            buffer.touch(offset: 0)
            buffer.touch(offset: Int(bytes) - 1)
            let median = FaultBenchmark.median(times)
            let moveFloor = floor * Int(bytes / UInt64(chunk))
            resident.append(Resident(
                bytes: bytes, forkNs: median, toBareFork: Double(median) / Double(max(bare, 1)), moveFloorNs: moveFloor,
                homeToMoveFloor: Double(median - empty) / Double(max(moveFloor, 1))))
        }
        return Report(
            device: device.name, repetitions: repetitions, bareForkNs: bare, emptyContextForkNs: empty, resident: resident,
            statistics: context.statistics.snapshot)
    }

    /// One `fork()` of a child that exits at once, to the parent's `waitpid`, in nanoseconds.
    private static func timeFork() throws -> Int {
        let start = FaultBenchmark.now()
        let child = fork()
        if child == 0 { _exit(0) }
        guard child > 0 else { throw BenchmarkError(message: "fork failed: errno \(errno)") }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return FaultBenchmark.now() - start
    }
}
