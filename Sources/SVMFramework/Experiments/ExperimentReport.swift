/// What an experiment found: deterministic for a configuration and seed, except
/// ``wallClock``.
public struct ExperimentReport: Sendable, Hashable, Codable {
    public var configuration: ExperimentConfiguration
    public var workload: String
    public var verification: Verification
    public var verified: Bool
    /// Kernels not run because memory they use was lost (a device reset).
    public var skippedKernels: Int
    /// Simulated time from the first phase's start to the last one's end.
    public var simulatedNanoseconds: UInt64
    public var devices: [DeviceStatistics]
    public var links: [LinkStatistics]
    /// The peer paths between devices, per ordered pair, with what each carried.
    public var peerLinks: [PeerLinkStatistics]
    /// The links of the topology that peer paths cross, per direction, with what all the
    /// paths over each carried together.
    public var hops: [HopStatistics]
    /// The devices' owner groups (by name): devices that map and migrate into each other's
    /// memory directly.
    public var ownerGroups: [[String]]
    /// Per device fault: the service time of its batch (the batch's latency and migrations).
    public var faultServiceLatency: LatencySummary
    /// The SVM core's counters (``SVMStatistics``): failed copies and migrations given up
    /// among them, which fault injection provokes.
    public var svm: [String: Int]
    /// How the CPU mirror's userfaultfd was opened (``UserFaultFD/Opening``, its raw value),
    /// which says whether it served the kernel's own accesses; `nil` without a mirror.
    public var mirror: String?
    /// What the CPU mirror of this run cannot do (``SVMContext/limitations``), said once.
    public var limitations: [String]
    /// How long the run took on this machine: the only field that differs between runs.
    public var wallClock: WallClock

    public struct WallClock: Sendable, Hashable, Codable {
        public var seconds: Double
        /// Simulated device accesses and device faults per wall-clock second.
        public var accessesPerSecond: Double
        public var faultsPerSecond: Double
    }
}
