import Glibc
import SVMPluginKit

/// Runs one experiment: opens the device in a fresh SVM context, runs the workload (real
/// memory, real faults, real bytes), times every phase on a ``SimulatedTimeline`` and
/// reports.
///
/// The host must have loaded the device plugin with
/// ``ExperimentConfiguration/pluginOptions`` (device memory and the device's options).
/// Only one experiment runs at a time in a process: each makes its own SVM context, whose
/// CPU mirror watches the memory the workload allocates.
public struct Experiment {
    public let configuration: ExperimentConfiguration
    public let host: PluginHost

    public init(configuration: ExperimentConfiguration, host: PluginHost) {
        self.configuration = configuration
        self.host = host
    }

    /// - Parameters:
    ///   - trace: receives the timeline's spans, when given.
    ///   - progress: called with the fraction done after each phase.
    /// - Throws: ``ExperimentError`` (bad configuration, no device, a refused fault).
    public func run(trace: TraceRecorder? = nil, progress: @escaping (Double) -> Void = { _ in }) throws -> ExperimentReport {
        try configuration.validate()
        let started = ContinuousClock.now
        let svmConfiguration: SVMConfiguration
        do {
            svmConfiguration = try SVMConfiguration(chunkSizes: configuration.chunkSizes)
        } catch {
            throw ExperimentError.invalidConfiguration("chunk sizes \(configuration.chunkSizes): \(error)")
        }
        let context = SVMContext(
            configuration: svmConfiguration, policy: configuration.policy, host: host, kernelFaults: configuration.kernelFaults)
        defer { context.shutdown() }
        if let reason = context.mirrorUnavailableReason {
            throw ExperimentError.device("the CPU mirror cannot migrate: \(reason)")
        }
        let device: SVMDevice
        do {
            device = try context.openDevice(plugin: configuration.devicePlugin)
        } catch {
            throw ExperimentError.device("cannot open \(configuration.devicePlugin) device 0: \(error)")
        }
        defer { context.close(device) }
        guard device.pagemap.info?.capacityBytes == configuration.deviceMemoryBytes else {
            throw ExperimentError.device(
                "\(device.name) has \(device.pagemap.info?.capacityBytes ?? 0) bytes of device memory, the configuration \(configuration.deviceMemoryBytes): load the plugin with the configuration's plugin options")
        }
        let timeline = SimulatedTimeline(parameters: configuration.timing, trace: trace)
        timeline.addDevice(id: device.deviceID, name: device.name)
        context.activity.enable()
        let driver = ExperimentDriver(
            context: context, device: device, timeline: timeline, clock: host.clock, seed: configuration.seed,
            progress: progress)
        let workload = configuration.makeWorkload()
        let verification = try workload.run(driver)
        let wall = started.duration(to: .now)
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
        let devices = timeline.deviceStatistics
        let accesses = devices.reduce(0) { $0 + $1.accesses }
        let faults = devices.reduce(0) { $0 + $1.faults.total }
        return ExperimentReport(
            configuration: configuration, workload: workload.summary, verification: verification,
            verified: verification.verified, skippedKernels: driver.skippedKernels, simulatedNanoseconds: timeline.now, devices: devices,
            links: timeline.linkStatistics, faultServiceLatency: timeline.faultServiceLatency,
            svm: context.statistics.snapshot, mirror: context.mirrorOpening?.rawValue, limitations: context.limitations,
            wallClock: .init(seconds: seconds, accessesPerSecond: Double(accesses) / seconds, faultsPerSecond: Double(faults) / seconds))
    }
}
