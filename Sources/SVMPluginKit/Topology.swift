import CSVMPluginABI

/// What one link of an interconnect's topology is (`enum svm_link_kind`).
public enum LinkKind: String, Sendable, Hashable, Codable {
    /// PCIe: between the root complex, switches and devices.
    case pcie
    /// A device fabric link between two devices.
    case fabric

    public init?(raw: UInt32) {
        switch raw {
        case UInt32(SVM_LINK_PCIE.rawValue): self = .pcie
        case UInt32(SVM_LINK_FABRIC.rawValue): self = .fabric
        default: return nil
        }
    }

    public var raw: UInt32 {
        switch self {
        case .pcie: UInt32(SVM_LINK_PCIE.rawValue)
        case .fabric: UInt32(SVM_LINK_FABRIC.rawValue)
        }
    }
}

/// One link of a topology (`struct svm_topology_link`, ABI 1.6), between two nodes named
/// by the interconnect ("root", "switch0") or by a device's location ("sim:0").
public struct TopologyLink: Sendable, Hashable, Codable {
    public var kind: LinkKind
    public var name: String
    /// For PCIe, `endA` is the end nearer the root complex.
    public var endA: String
    public var endB: String
    /// Bytes per second in each direction.
    public var bandwidthBytesPerSecond: UInt64
    /// One-way latency of a minimal transfer, in nanoseconds.
    public var latencyNanoseconds: UInt64
    public var lanes: UInt32
    /// 1 to 6 for PCIe, 0 for a fabric link.
    public var pcieGeneration: UInt32

    public init(
        kind: LinkKind, name: String, endA: String, endB: String, bandwidthBytesPerSecond: UInt64,
        latencyNanoseconds: UInt64, lanes: UInt32, pcieGeneration: UInt32 = 0
    ) {
        self.kind = kind
        self.name = name
        self.endA = endA
        self.endB = endB
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.latencyNanoseconds = latencyNanoseconds
        self.lanes = lanes
        self.pcieGeneration = pcieGeneration
    }

    /// `nil` when the plugin wrote a kind this build does not know.
    public init?(_ raw: svm_topology_link) {
        guard let kind = LinkKind(raw: raw.kind) else { return nil }
        self.kind = kind
        name = abiName(raw.name)
        endA = abiName(raw.end_a)
        endB = abiName(raw.end_b)
        bandwidthBytesPerSecond = raw.bandwidth_bytes_per_s
        latencyNanoseconds = raw.latency_ns
        lanes = raw.lanes
        pcieGeneration = raw.pcie_generation
    }

    public var raw: svm_topology_link {
        var raw = svm_topology_link.sized()
        raw.kind = kind.raw
        setABIName(&raw.name, name)
        setABIName(&raw.end_a, endA)
        setABIName(&raw.end_b, endB)
        raw.bandwidth_bytes_per_s = bandwidthBytesPerSecond
        raw.latency_ns = latencyNanoseconds
        raw.lanes = lanes
        raw.pcie_generation = pcieGeneration
        return raw
    }

    /// Whether the link joins `node`.
    public func joins(_ node: String) -> Bool { endA == node || endB == node }

    /// The end that is not `node`.
    public func otherEnd(than node: String) -> String { endA == node ? endB : endA }
}

/// How one device reaches another's memory (`struct svm_path`, ABI 1.6): the links it
/// crosses, in order, and what the path as a whole gives.
public struct PeerPath: Sendable, Hashable, Codable {
    /// PCIe peer-to-peer or a fabric.
    public var linkProtocol: LinkProtocol
    public var hops: [TopologyLink]
    /// The narrowest hop's bandwidth, per direction.
    public var bandwidthBytesPerSecond: UInt64
    /// The hops' latencies together.
    public var latencyNanoseconds: UInt64

    /// A path over `hops`, with its bandwidth and latency from them.
    public init(linkProtocol: LinkProtocol, hops: [TopologyLink]) {
        self.linkProtocol = linkProtocol
        self.hops = hops
        bandwidthBytesPerSecond = hops.map(\.bandwidthBytesPerSecond).min() ?? 0
        latencyNanoseconds = hops.reduce(0) { $0 &+ $1.latencyNanoseconds }
    }

    /// Why a plugin's path is refused.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case badProtocol(UInt32)
        case badHopCount(UInt32)
        case badHop(Int)

        public var description: String {
            switch self {
            case .badProtocol(let value): "protocol \(value), which is not a peer protocol (PCIE_P2P or FABRIC)"
            case .badHopCount(let count): "\(count) hops; 1 to \(SVM_MAX_HOPS)"
            case .badHop(let index): "hop \(index) has a link kind this host does not know"
            }
        }
    }

    /// The path a plugin wrote, checked: a peer protocol, 1 to `SVM_MAX_HOPS` hops of known
    /// kinds.
    public init(checking raw: svm_path) throws(Refusal) {
        guard let linkProtocol = LinkProtocol(raw: raw.protocol), linkProtocol == .pciePeerToPeer || linkProtocol == .fabric else {
            throw .badProtocol(raw.protocol)
        }
        guard (1...UInt32(SVM_MAX_HOPS)).contains(raw.hop_count) else { throw .badHopCount(raw.hop_count) }
        var hops: [TopologyLink] = []
        try withUnsafeBytes(of: raw.hops) { (bytes) throws(Refusal) in
            let all = bytes.bindMemory(to: svm_topology_link.self)
            for index in 0..<Int(raw.hop_count) {
                guard let hop = TopologyLink(all[index]) else { throw .badHop(index) }
                hops.append(hop)
            }
        }
        self.linkProtocol = linkProtocol
        self.hops = hops
        bandwidthBytesPerSecond = raw.bandwidth_bytes_per_s
        latencyNanoseconds = raw.latency_ns
    }

    public var raw: svm_path {
        var raw = svm_path.sized()
        raw.protocol = linkProtocol.raw
        raw.hop_count = UInt32(min(hops.count, Int(SVM_MAX_HOPS)))
        raw.bandwidth_bytes_per_s = bandwidthBytesPerSecond
        raw.latency_ns = latencyNanoseconds
        withUnsafeMutableBytes(of: &raw.hops) { bytes in
            let all = bytes.bindMemory(to: svm_topology_link.self)
            for (index, hop) in hops.prefix(Int(SVM_MAX_HOPS)).enumerated() { all[index] = hop.raw }
        }
        return raw
    }
}
