/// What a link costs a transfer: a fixed latency, a bandwidth per direction, and an
/// efficiency that grows with the transfer's size.
///
/// ## The efficiency curve
/// A transfer of `s` bytes moves at `efficiency(s) = s / (s + halfEfficiencyBytes)` of the
/// link's bandwidth: small transfers are dominated by per-transfer costs (descriptor
/// set-up, headers, completion), large ones approach the bandwidth. That is the same as
/// charging every transfer `halfEfficiencyBytes` of extra bytes, which keeps hand
/// computation easy: one transfer alone takes
/// `latency + (s + halfEfficiencyBytes) / bandwidth`. GPGPU-Sim UVMSmart fits a curve of
/// transfer latency against size for the same reason.
public struct LinkParameters: Sendable, Hashable, Codable {
    public var name: String
    /// One-way latency of a transfer, in nanoseconds.
    public var latencyNanoseconds: UInt64
    /// Bandwidth in each direction, bytes per second.
    public var bytesPerSecond: Double
    /// The size at which a transfer reaches half the bandwidth.
    public var halfEfficiencyBytes: UInt64

    public init(name: String, latencyNanoseconds: UInt64, bytesPerSecond: Double, halfEfficiencyBytes: UInt64) {
        self.name = name
        self.latencyNanoseconds = latencyNanoseconds
        self.bytesPerSecond = bytesPerSecond
        self.halfEfficiencyBytes = halfEfficiencyBytes
    }

    /// The fraction of the bandwidth a transfer of `bytes` bytes reaches alone.
    public func efficiency(bytes: UInt64) -> Double {
        Double(bytes) / (Double(bytes) + Double(halfEfficiencyBytes))
    }

    /// PCIe 4.0 x16: 16 GT/s × 16 lanes with 128b/130b encoding ≈ 31.5 GB/s per direction
    /// (PCI-SIG's figure). Latency 1 µs, a DMA round trip's order of magnitude. Half
    /// efficiency at 8 KiB: 4 KiB transfers reach a third of the bandwidth and 64 KiB ones
    /// about 90%, the shape of measured host↔device copy bandwidth against size (for
    /// instance CUDA's `bandwidthTest --mode=shmoo`); an assumption, not a measurement here.
    public static let pcieGen4x16 = LinkParameters(
        name: "PCIe Gen4 x16", latencyNanoseconds: 1_000, bytesPerSecond: 31.5e9, halfEfficiencyBytes: 8 << 10)

    /// PCIe 5.0 x16: twice Gen4's rate, ≈ 63 GB/s per direction (PCI-SIG); the same latency
    /// and curve as ``pcieGen4x16``.
    public static let pcieGen5x16 = LinkParameters(
        name: "PCIe Gen5 x16", latencyNanoseconds: 1_000, bytesPerSecond: 63e9, halfEfficiencyBytes: 8 << 10)
}
