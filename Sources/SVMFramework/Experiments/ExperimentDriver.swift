import SVMPluginKit

/// What a workload uses to run: memory, the devices, their kernels and CPU phases, each
/// timed on the experiment's ``SimulatedTimeline`` right after it really ran, and a seeded
/// generator. One thread drives it (the determinism rule), so kernels on different devices
/// run one after another, in real and in simulated time.
public final class ExperimentDriver {
    /// The experiment's devices, in the order they were opened; at least one.
    public let devices: [SVMDevice]
    /// The first device, where a workload runs what it does not split.
    public var device: SVMDevice { devices[0] }
    public let timeline: SimulatedTimeline
    /// The only source of randomness a workload may use.
    public var random: SeededRandom
    private let context: SVMContext
    private let progress: (Double) -> Void
    /// The host's clock, which plugins read (`clock_now_ns`): it follows the timeline.
    private let clock: SimulationClock
    /// What skipped kernels would have written: never computed, so not to be checked.
    private let notComputed = LostMemory()
    /// Kernels not run because memory they use was lost (a device reset).
    public private(set) var skippedKernels = 0

    init(
        context: SVMContext, devices: [SVMDevice], timeline: SimulatedTimeline, clock: SimulationClock, seed: UInt64,
        progress: @escaping (Double) -> Void
    ) {
        self.context = context
        self.clock = clock
        precondition(!devices.isEmpty, "an experiment needs a device")
        self.devices = devices
        self.timeline = timeline
        random = SeededRandom(seed: seed)
        self.progress = progress
    }

    /// A new array of `count` `UInt32`s.
    public func array(count: Int) throws -> SVMArray { try SVMArray(count: count) }

    /// Runs `kernel` on `device` (the first by default), then times it. A kernel that would use lost memory (see
    /// ``lostElements(of:)``) is not run: it returns `nil`, and what it would have written
    /// counts as lost too.
    /// - Parameter reads: arrays the kernel reads that it does not name with a size (a
    ///   gather's table).
    /// - Throws: ``ExperimentError/kernelStopped(kernel:status:address:why:)`` when a fault was refused.
    @discardableResult
    public func launch(_ name: String, _ kernel: DeviceKernel, reads: [SVMArray] = [], on device: SVMDevice? = nil) throws -> KernelResult? {
        let device = device ?? self.device
        let footprint = KernelFootprint(kernel)
        if (footprint.all + reads.map(\.interval)).contains(where: isLost) {
            skip(footprint)
            return nil
        }
        let result = try device.run(kernel)
        // Timed with the kernels around it: those on other devices that use other memory
        // overlap it (the clock plugins read moves at the next CPU phase).
        timeline.kernel(
            name, on: device.deviceID, result: result, activity: context.activity.drain(), reads: footprint.reads + reads.map(\.interval),
            writes: footprint.writes)
        if let status = result.stoppedBy {
            // Refused for lost data the check above could not see (a reset during the kernel).
            if status == .ioError, isLost(AddressInterval(start: result.faultAddress, end: result.faultAddress + 1)) {
                skip(footprint)
                return result
            }
            let why = status == .tryAgain ? device.lastFaultFailure : nil
            throw ExperimentError.kernelStopped(kernel: name, status: status, address: result.faultAddress, why: why)
        }
        return result
    }

    private func skip(_ footprint: KernelFootprint) {
        skippedKernels += 1
        for interval in footprint.writes { notComputed.insert(interval) }
    }

    private func isLost(_ interval: AddressInterval) -> Bool {
        context.lostMemory.overlaps(interval) || notComputed.overlaps(interval)
    }

    /// The elements of `array` a workload must not read: lost in a device reset (reading
    /// them raises `SIGBUS`) or never computed by a skipped kernel. Count them in
    /// ``Verification/lost``.
    public func lostElements(of array: SVMArray) -> LostElements {
        LostElements(array: array, lost: context.lostMemory.parts(of: array.interval) + notComputed.parts(of: array.interval))
    }

    /// Brings what device memory holds of `array` back to system memory, as the CPU's first
    /// reads of it would, but before them: data whose copy back fails is then lost and in
    /// ``lostElements(of:)`` instead of raising `SIGBUS` in the read. Call it in the CPU
    /// phase that reads `array`, before asking for its lost elements; a workload needs it
    /// when results that are not lost may still be in device memory when the CPU checks
    /// them.
    public func bringHome(_ array: SVMArray) {
        context.migrateToSystemForCPU(array.interval)
    }

    /// Runs `body` on this thread as CPU work touching `bytes` bytes, then times it with the
    /// migrations its CPU faults made.
    public func cpu<Result>(_ name: String, bytes: UInt64, _ body: () throws -> Result) rethrows -> Result {
        let result = try body()
        // CPU faults are serviced before the faulting access returns: the log is complete.
        timeline.cpu(name, bytes: bytes, activity: context.activity.drain())
        clock.advance(to: timeline.now)
        return result
    }

    /// Tells the caller how far the workload is (0 to 1).
    public func report(progress fraction: Double) { progress(min(1, max(0, fraction))) }
}

extension ExperimentDriver {
    /// Elements one kernel launch covers: 64 MiB of `UInt32`s, so long runs report progress.
    public static let launchElements = 16 << 20

    /// Elements of one 2 MiB range: shards start at multiples of it, so that no range is
    /// used by two devices (arrays are 2 MiB aligned, see ``SVMArray``).
    public static let shardAlignment = (2 << 20) / 4

    /// Launches `kernel(start, count)` over `[0, elements)` in launches of at most
    /// ``launchElements`` elements, reporting progress from `progress` up to `progress + share`.
    /// With several devices the elements are sharded: device `d` runs the `d`th contiguous
    /// part (whole ranges each), the devices one after another; given `device`, it runs them
    /// all.
    public func launchInChunks(
        _ name: String, elements: Int, progress: Double = 0, share: Double = 0, reads: [SVMArray] = [],
        on device: SVMDevice? = nil, _ kernel: (_ start: Int, _ count: Int) -> DeviceKernel
    ) throws {
        let parts = device.map { [(device: $0, elements: 0..<elements)] } ?? shards(of: elements)
        for (device, shard) in parts {
            for start in stride(from: shard.lowerBound, to: shard.upperBound, by: Self.launchElements) {
                let count = min(Self.launchElements, shard.upperBound - start)
                try launch(name, kernel(start, count), reads: reads, on: device)
                report(progress: progress + share * Double(start + count) / Double(elements))
            }
        }
    }

    /// `[0, elements)` split across the devices in parts of whole ranges, as evenly as
    /// whole ranges allow (the first devices get one more); a device left without a range
    /// gets no part.
    /// - Parameter alignment: the unit of a part, ``shardAlignment`` elements by default; a
    ///   workload that shards rows rather than elements passes the rows that make whole
    ///   ranges (see ``MatmulWorkload``).
    public func shards(of elements: Int, alignment: Int = shardAlignment) -> [(device: SVMDevice, elements: Range<Int>)] {
        precondition(alignment > 0)
        let blocks = (elements + alignment - 1) / alignment
        var start = 0
        return devices.enumerated().compactMap { index, device in
            let share = blocks / devices.count + (index < blocks % devices.count ? 1 : 0)
            let end = min(elements, start + share * alignment)
            defer { start = end }
            return start < end ? (device, start..<end) : nil
        }
    }
}
