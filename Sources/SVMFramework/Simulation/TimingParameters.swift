/// What the host side of a simulated system costs: the driver's fault service, the copy
/// engines that migrate, the link, and the CPU. The device's own execution is timed by its
/// plugin (SimDevice's options).
public struct TimingParameters: Sendable, Hashable, Codable {
    /// Host ↔ device.
    public var link = LinkParameters.pcieGen4x16
    /// Driver time to take one batch of replayable faults and decide what to do, before any
    /// data moves: 45 µs, the far-fault service latency GPGPU-Sim UVMSmart is configured
    /// with.
    public var faultServiceNanoseconds: UInt64 = 45_000
    /// Copy engines per device, each moving one migration at a time: two, an assumption
    /// (discrete GPUs have one to a few copy/blitter engines).
    public var copyEngines = 2
    /// One copy engine's bandwidth: as fast as a PCIe Gen4 x16 link, so the link limits.
    public var copyEngineBytesPerSecond = 31.5e9
    /// Whose copy engines move a direct migration between two devices: the source's, the
    /// kernel's default (`source_peer_migrates`: the source reads its own memory and writes
    /// the peer's), or the destination's.
    public var peerCopyEngine = PeerCopyEngine.source

    public enum PeerCopyEngine: String, Sendable, Hashable, Codable, CaseIterable {
        case source, destination
    }

    /// A CPU fault that migrates a range back, before its copy: 20 µs, an assumption of
    /// the order the kernel's `migrate_to_ram` and this framework's `bench fault` show.
    public var cpuFaultNanoseconds: UInt64 = 20_000
    /// What one CPU thread touches per second: 10 GB/s, an assumption of one core's
    /// streaming bandwidth.
    public var cpuBytesPerSecond = 10e9

    public init() {}
}
