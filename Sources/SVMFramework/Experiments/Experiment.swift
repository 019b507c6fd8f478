import Glibc
import SVMPluginKit

/// Runs one experiment: opens the devices in a fresh SVM context, runs the workload (real
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
            configuration: svmConfiguration, policy: configuration.policy, host: host, kernelFaults: configuration.kernelFaults,
            handlerPlacement: configuration.handlerPlacement)
        defer { context.shutdown() }
        if let reason = context.mirrorUnavailableReason {
            throw ExperimentError.device("the CPU mirror cannot migrate: \(reason)")
        }
        var devices: [SVMDevice] = []
        defer { for device in devices { context.close(device) } }
        for index in 0..<configuration.devices {
            do {
                devices.append(try context.openDevice(plugin: configuration.devicePlugin, index: index))
            } catch {
                throw ExperimentError.device("cannot open \(configuration.devicePlugin) device \(index): \(error)")
            }
        }
        let timeline = SimulatedTimeline(parameters: configuration.timing, trace: trace)
        for device in devices {
            guard device.pagemap.info?.capacityBytes == configuration.deviceMemoryBytes else {
                throw ExperimentError.device(
                    "\(device.name) has \(device.pagemap.info?.capacityBytes ?? 0) bytes of device memory, the configuration \(configuration.deviceMemoryBytes): load the plugin with the configuration's plugin options")
            }
            let topology = context.topology
            let location = topology.devices.first { $0.id == device.deviceID }?.info.location ?? ""
            timeline.addDevice(id: device.deviceID, name: device.name, location: location, hostRoute: topology.hostRoute(of: device.deviceID) ?? [])
            device.iova.setAperture(bytes: configuration.iovaApertureBytes)
        }
        let topology = context.topology
        for a in devices {
            for b in devices where a !== b {
                if let path = topology.path(from: a.deviceID, to: b.deviceID) { timeline.addPeerPath(from: a.deviceID, to: b.deviceID, path: path) }
            }
        }
        context.activity.enable()
        let driver = ExperimentDriver(
            context: context, devices: devices, timeline: timeline, clock: host.clock, seed: configuration.seed,
            progress: progress)
        let workload = configuration.makeWorkload()
        let verification = try workload.run(driver)
        let wall = started.duration(to: .now)
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
        let statistics = timeline.deviceStatistics
        let accesses = statistics.reduce(0) { $0 + $1.accesses }
        let faults = statistics.reduce(0) { $0 + $1.faults.total }
        return ExperimentReport(
            configuration: configuration, workload: workload.summary, verification: verification,
            verified: verification.verified, skippedKernels: driver.skippedKernels, simulatedNanoseconds: timeline.now, devices: statistics,
            links: timeline.linkStatistics, peerLinks: timeline.peerLinkStatistics, hops: timeline.hopStatistics,
            ownerGroups: topology.ownerGroups.map { group in group.map { id in devices.first { $0.deviceID == id }?.name ?? "\(id)" } },
            faultServiceLatency: timeline.faultServiceLatency,
            svm: context.statistics.snapshot, mirror: context.mirrorOpening?.rawValue, limitations: context.limitations,
            wallClock: .init(seconds: seconds, accessesPerSecond: Double(accesses) / seconds, faultsPerSecond: Double(faults) / seconds))
    }
}
