import CSVMPluginABI
import SVMPluginKit

private let exporter = PluginExporter(interconnect: P2PFabricPlugin.self)

/// The plugin's entry symbol: the host finds it with dlsym.
@_cdecl("svm_plugin_entry")
public func svmPluginEntry(_ request: UnsafePointer<svm_plugin_request>?)
    -> UnsafePointer<svm_plugin_descriptor>?
{
    exporter.entry(request)
}

/// A peer-to-peer interconnect between simulated devices: the topology of a machine (root
/// complex, PCIe switch, device fabric, see ``P2PFabricTopology``) and the paths between its
/// device slots `sim:0` ... `sim:N-1`.
///
/// Options (`--plugin-option P2PFabric.KEY=VALUE`):
/// - `topology`: `fabric` (default: one switch and a fabric link between every two devices),
///   `pcie` (one switch, PCIe peer-to-peer) or `none` (a root port per device, no peers);
///   `protocol=fabric|pcie` is the same;
/// - `devices`: device slots, 1 to 256 (default 8);
/// - `pcie-generation` (1 to 6, default 4) and `pcie-width` (1, 2, 4, 8 or 16, default 16):
///   every PCIe link;
/// - `bandwidth`: GB/s per direction of the peer link (the fabric link, or with `pcie` each
///   PCIe link), decimal, e.g. `31.5`;
/// - `latency`: the one-way latency of a minimal peer transfer in nanoseconds (with `pcie`,
///   half on each of the two links through the switch);
/// - `endpoints`: how many devices one fabric joins (default 8).
public final class P2PFabricPlugin: InterconnectPlugin {
    public static let identity = PluginIdentity(
        name: "P2PFabric", version: "0.2.0",
        description: "Topology of simulated devices: PCIe switch, root ports, device fabric",
        kind: .interconnect)

    let link: LinkInfo
    let topology: P2PFabricTopology

    public required init(host: HostServices) throws {
        func option(_ key: String, expected: String, _ parse: (String) -> UInt64?) throws -> UInt64? {
            guard let text = host.config(key) else { return nil }
            guard let value = parse(text) else {
                throw PluginOptionError(plugin: "P2PFabric", key: key, value: text, expected: expected)
            }
            return value
        }
        let shapeKey = host.config("topology") != nil ? "topology" : "protocol"
        let shapeText = host.config(shapeKey) ?? "fabric"
        guard let shape = P2PFabricTopology.Shape(rawValue: shapeText), shapeKey == "topology" || shape != .none else {
            throw PluginOptionError(
                plugin: "P2PFabric", key: shapeKey, value: shapeText,
                expected: shapeKey == "topology" ? "fabric, pcie or none" : "fabric or pcie")
        }
        let devices = try option("devices", expected: "1 to 256") { UInt64($0).flatMap { (1...256).contains($0) ? $0 : nil } } ?? 8
        let generation = try option("pcie-generation", expected: "1 to 6") { UInt64($0).flatMap { (1...6).contains($0) ? $0 : nil } } ?? 4
        let width = try option("pcie-width", expected: "1, 2, 4, 8 or 16") { UInt64($0).flatMap { [1, 2, 4, 8, 16].contains($0) ? $0 : nil } } ?? 16
        var pcie = P2PFabricDefaults.pcieLink(generation: UInt32(generation), lanes: UInt32(width))
        var fabric = P2PFabricDefaults.fabricLink
        let bandwidth = try option("bandwidth", expected: "GB/s per direction, e.g. 31.5") { text in
            Double(text).flatMap { $0 > 0 && $0 < 100_000 ? UInt64($0 * 1e9) : nil }
        }
        let latency = try option("latency", expected: "nanoseconds") { UInt64($0) }
        if shape == .fabric {
            fabric.bandwidthBytesPerSecond = bandwidth ?? fabric.bandwidthBytesPerSecond
            fabric.latencyNanoseconds = latency ?? fabric.latencyNanoseconds
        } else {
            pcie.bandwidthBytesPerSecond = bandwidth ?? pcie.bandwidthBytesPerSecond
            // A peer's transfer crosses two PCIe links, through the switch: half each.
            pcie.latencyNanoseconds = latency.map { $0 / 2 } ?? pcie.latencyNanoseconds
        }
        let endpoints = try option("endpoints", expected: "2 to 1024") { UInt64($0).flatMap { (2...1024).contains($0) ? $0 : nil } } ?? 8
        topology = P2PFabricTopology(shape: shape, devices: Int(devices), pcie: pcie, fabric: fabric)
        // The link a peer path uses, as `link_info` describes it.
        let peer = shape == .fabric ? fabric : pcie
        link = LinkInfo(
            name: shape == .fabric ? "gpu-fabric-link" : "pcie-gen\(generation)-x\(width)-p2p",
            linkProtocol: shape == .fabric ? .fabric : .pciePeerToPeer,
            bandwidthBytesPerSecond: peer.bandwidthBytesPerSecond,
            // Through the switch, a PCIe peer crosses two links.
            latencyNanoseconds: shape == .fabric ? peer.latencyNanoseconds : 2 * peer.latencyNanoseconds,
            maxEndpoints: UInt32(endpoints))
    }

    public func linkInfo() throws -> LinkInfo { link }

    /// Only simulated devices are joined: a real GPU's links are the kernel driver's business.
    public func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool {
        a.flags.contains(.simulated) && b.flags.contains(.simulated)
    }

    public func links() throws -> [TopologyLink] { topology.links }

    public func path(from: String, to: String) throws -> PeerPath? { try topology.path(from: from, to: to) }
}

/// Default link parameters, each with its source.
enum P2PFabricDefaults {
    /// GB/s per lane and direction of PCIe generation 1 to 6: the transfer rate times the
    /// encoding's efficiency (8b/10b for 1 and 2, 128b/130b for 3 to 5, FLIT mode's 242/256
    /// for 6), per the PCI-SIG base specifications. Gen4 x16: 1.969 x 16 = 31.5 GB/s.
    static let pcieLaneGigabytesPerSecond: [Double] = [0.25, 0.5, 8 * 128 / 130 / 8, 16 * 128 / 130 / 8, 32 * 128 / 130 / 8, 64 * 242 / 256 / 8]

    /// A PCIe link. Latency: an assumption of 500 ns per link, so that a peer write through
    /// one switch (two links) takes 1 µs, to be refined by the link model.
    static func pcieLink(generation: UInt32, lanes: UInt32) -> TopologyLink {
        let bytes = pcieLaneGigabytesPerSecond[Int(generation) - 1] * Double(lanes) * 1e9
        return TopologyLink(
            kind: .pcie, name: "pcie", endA: "", endB: "", bandwidthBytesPerSecond: UInt64(bytes.rounded()),
            latencyNanoseconds: 500, lanes: lanes, pcieGeneration: generation)
    }

    /// One NVLink 3.0 link: 50 GB/s both directions together, so 25 GB/s per direction
    /// (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020). Latency: an assumption
    /// of 700 ns for a minimal transfer, below PCIe's, to be refined by the link model.
    static let fabricLink = TopologyLink(
        kind: .fabric, name: "fabric", endA: "", endB: "", bandwidthBytesPerSecond: 25_000_000_000,
        latencyNanoseconds: 700, lanes: 4)
}
