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

/// A peer-to-peer interconnect between simulated devices: a device fabric, or PCIe
/// peer-to-peer through a switch.
///
/// Options (`--plugin-option P2PFabric.KEY=VALUE`):
/// - `protocol`: `fabric` (default) or `pcie`;
/// - `bandwidth`: GB/s per direction (decimal, e.g. `31.5`);
/// - `latency`: one-way latency of a minimal transfer in nanoseconds;
/// - `endpoints`: how many devices one fabric joins (default 8).
public final class P2PFabricPlugin: InterconnectPlugin {
    public static let identity = PluginIdentity(
        name: "P2PFabric", version: "0.1.0",
        description: "Peer-to-peer links between devices: a GPU fabric or PCIe P2P",
        kind: .interconnect)

    let link: LinkInfo

    public required init(host: HostServices) throws {
        let linkProtocol: LinkProtocol
        switch host.config("protocol") ?? "fabric" {
        case "fabric": linkProtocol = .fabric
        case "pcie": linkProtocol = .pciePeerToPeer
        case let other:
            throw PluginOptionError(plugin: "P2PFabric", key: "protocol", value: other, expected: "fabric or pcie")
        }
        var link = P2PFabricDefaults.link(for: linkProtocol)
        if let text = host.config("bandwidth") {
            guard let gigabytes = Double(text), gigabytes > 0, gigabytes < 100_000 else {
                throw PluginOptionError(plugin: "P2PFabric", 
                    key: "bandwidth", value: text, expected: "GB/s per direction, e.g. 31.5")
            }
            link.bandwidthBytesPerSecond = UInt64(gigabytes * 1e9)
        }
        if let text = host.config("latency") {
            guard let nanoseconds = UInt64(text) else {
                throw PluginOptionError(plugin: "P2PFabric", key: "latency", value: text, expected: "nanoseconds")
            }
            link.latencyNanoseconds = nanoseconds
        }
        if let text = host.config("endpoints") {
            guard let count = UInt32(text), (2...1024).contains(count) else {
                throw PluginOptionError(plugin: "P2PFabric", key: "endpoints", value: text, expected: "2 to 1024")
            }
            link.maxEndpoints = count
        }
        self.link = link
    }

    public func linkInfo() throws -> LinkInfo { link }

    /// Only simulated devices are joined: a real GPU's links are the kernel driver's business.
    public func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool {
        a.flags.contains(.simulated) && b.flags.contains(.simulated)
    }
}

/// Default link parameters, each with its source.
enum P2PFabricDefaults {
    static func link(for linkProtocol: LinkProtocol) -> LinkInfo {
        switch linkProtocol {
        case .pciePeerToPeer:
            // PCIe Gen4 x16: 16 GT/s x 16 lanes x 128b/130b = 31.5 GB/s per direction (PCI-SIG
            // PCIe 4.0 base specification). Latency: an assumption of 1 µs for a small peer
            // write through one switch, to be refined by the link model.
            LinkInfo(
                name: "pcie-gen4-x16-p2p", linkProtocol: .pciePeerToPeer,
                bandwidthBytesPerSecond: 31_500_000_000, latencyNanoseconds: 1_000,
                maxEndpoints: 8)
        default:
            // One NVLink 3.0 link: 50 GB/s both directions together, so 25 GB/s per direction
            // (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020). Latency: an assumption
            // of 700 ns for a minimal transfer, below PCIe's, to be refined by the link model.
            LinkInfo(
                name: "gpu-fabric-link", linkProtocol: .fabric,
                bandwidthBytesPerSecond: 25_000_000_000, latencyNanoseconds: 700,
                maxEndpoints: 8)
        }
    }
}
