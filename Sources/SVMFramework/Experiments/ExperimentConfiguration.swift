import SVMPluginKit

/// One experiment: a topology (SimDevices behind PCIe links to the host, joined by the
/// interconnect P2PFabric builds), a workload, a policy and a seed. ``standard`` is what
/// `svm-cli run` does with no arguments: one device.
public struct ExperimentConfiguration: Sendable, Hashable, Codable {
    public var workload: WorkloadKind = .stream
    /// Bytes of the workload's arrays together; `nil`: the workload's default (96 MiB, or
    /// 1.5 × device memory for oversubscription).
    public var workingSetBytes: UInt64? = nil
    public var seed: UInt64 = 1
    public var policy: MigrationPolicy = .migrateOnDeviceFault
    /// Device memory of each simulated device.
    public var deviceMemoryBytes: UInt64 = 256 << 20
    /// How many devices the workload splits across, 1 to ``maxDevices``.
    public var devices = 1
    /// How P2PFabric joins the devices (its `topology` option).
    public var interconnect: InterconnectShape = .fabric

    /// P2PFabric's topologies.
    public enum InterconnectShape: String, Sendable, Hashable, Codable, CaseIterable {
        /// A fabric link between every two devices.
        case fabric
        /// PCIe peer-to-peer through one switch.
        case pcie
        /// No peer paths: device to device through system memory.
        case none
    }

    public static let maxDevices = 8
    /// The device plugin and its options (device memory is set from ``deviceMemoryBytes``).
    public var devicePlugin = "SimDevice"
    public var deviceOptions: [String: String] = [:]
    public var timing = TimingParameters()
    /// Range sizes the SVM layer uses, descending.
    public var chunkSizes: [UInt64] = SVMConfiguration.standard.chunkSizes
    /// Whether the CPU mirror serves the kernel's own accesses where the process may.
    public var kernelFaults: KernelFaults = .whenPermitted
    /// Where the CPU mirror's handler thread runs (see ``HandlerPlacement``).
    public var handlerPlacement: HandlerPlacement = .scheduler
    /// Each device's IOVA space (see ``IOVASpace``); 0: no IOMMU, bindings map page by page.
    public var iovaApertureBytes = IOVASpace.defaultApertureBytes

    public init() {}

    public static let standard = ExperimentConfiguration()

    /// The working set the workload gets.
    public var effectiveWorkingSetBytes: UInt64 {
        workingSetBytes ?? (workload == .oversubscription ? deviceMemoryBytes / 2 * 3 : 96 << 20)
    }

    /// The options to load the device plugin with: its ``deviceOptions`` and the device
    /// memory.
    public var pluginOptions: [String: [String: String]] {
        var options = deviceOptions
        options["memory"] = "\(deviceMemoryBytes >> 20)M"
        if devices > 1 { options["devices"] = "\(devices)" }
        // The machine's PCIe links are those of the host link, which its devices' host
        // traffic crosses (see SimulatedTimeline.addDevice).
        let generation = timing.link == .pcieGen5x16 ? "5" : "4"
        return [devicePlugin: options, "P2PFabric": ["topology": interconnect.rawValue, "devices": "\(max(devices, 2))", "pcie-generation": generation]]
    }

    /// The workload this configuration names.
    public func makeWorkload() -> any Workload {
        let bytes = effectiveWorkingSetBytes
        switch workload {
        case .stream: return StreamWorkload(workingSetBytes: bytes)
        case .gather: return GatherWorkload(workingSetBytes: bytes)
        case .pingPong: return PingPongWorkload(workingSetBytes: bytes)
        case .oversubscription: return OversubscriptionWorkload(workingSetBytes: bytes)
        case .stencil: return StencilWorkload(workingSetBytes: bytes)
        case .matmul: return MatmulWorkload(workingSetBytes: bytes)
        }
    }

    /// - Throws: ``ExperimentError/invalidConfiguration(_:)`` naming the bad value.
    public func validate() throws(ExperimentError) {
        guard (1...Self.maxDevices).contains(devices) else {
            throw .invalidConfiguration("\(devices) devices: 1 to \(Self.maxDevices)")
        }
        guard deviceMemoryBytes >= 2 << 20, deviceMemoryBytes % (2 << 20) == 0 else {
            throw .invalidConfiguration("device memory \(deviceMemoryBytes) bytes: must be a multiple of 2 MiB")
        }
        let bytes = effectiveWorkingSetBytes
        guard bytes >= 16 << 10 else {
            throw .invalidConfiguration("working set \(ByteCount.format(bytes)): at least 16K is needed")
        }
        guard bytes <= 64 << 30 else {
            throw .invalidConfiguration("working set \(ByteCount.format(bytes)): at most 64G")
        }
        guard iovaApertureBytes % 4096 == 0 else {
            throw .invalidConfiguration("IOVA aperture \(iovaApertureBytes) bytes: must be a multiple of 4 KiB")
        }
        guard timing.copyEngines >= 1, timing.link.bytesPerSecond > 0 else {
            throw .invalidConfiguration("a device needs at least one copy engine and a link with bandwidth")
        }
    }
}
