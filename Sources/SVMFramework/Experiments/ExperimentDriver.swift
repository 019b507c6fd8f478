import SVMPluginKit

/// What a workload uses to run: memory, one device, its kernels and CPU phases, each timed
/// on the experiment's ``SimulatedTimeline`` right after it really ran, and a seeded
/// generator. One thread drives it (the determinism rule).
public final class ExperimentDriver {
    public let device: SVMDevice
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
        context: SVMContext, device: SVMDevice, timeline: SimulatedTimeline, clock: SimulationClock, seed: UInt64,
        progress: @escaping (Double) -> Void
    ) {
        self.context = context
        self.clock = clock
        self.device = device
        self.timeline = timeline
        random = SeededRandom(seed: seed)
        self.progress = progress
    }

    /// A new array of `count` `UInt32`s.
    public func array(count: Int) throws -> SVMArray { try SVMArray(count: count) }

    /// Runs `kernel` on the device, then times it. A kernel that would use lost memory (see
    /// ``lostElements(of:)``) is not run: it returns `nil`, and what it would have written
    /// counts as lost too.
    /// - Parameter reads: arrays the kernel reads that it does not name with a size (a
    ///   gather's table).
    /// - Throws: ``ExperimentError/kernelStopped(kernel:status:address:why:)`` when a fault was refused.
    @discardableResult
    public func launch(_ name: String, _ kernel: DeviceKernel, reads: [SVMArray] = []) throws -> KernelResult? {
        let footprint = KernelFootprint(kernel)
        if (footprint.all + reads.map(\.interval)).contains(where: isLost) {
            skip(footprint)
            return nil
        }
        let result = try device.run(kernel)
        timeline.kernel(name, on: device.deviceID, result: result, activity: context.activity.drain())
        clock.advance(to: timeline.now)
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

    /// Launches `kernel(start, count)` over `[0, elements)` in launches of at most
    /// ``launchElements`` elements, reporting progress from `progress` up to `progress + share`.
    public func launchInChunks(
        _ name: String, elements: Int, progress: Double = 0, share: Double = 0, reads: [SVMArray] = [],
        _ kernel: (_ start: Int, _ count: Int) -> DeviceKernel
    ) throws {
        for start in stride(from: 0, to: elements, by: Self.launchElements) {
            let count = min(Self.launchElements, elements - start)
            try launch(name, kernel(start, count), reads: reads)
            report(progress: progress + share * Double(start + count) / Double(elements))
        }
    }
}
