import CSVMPluginABI

/// How a device reaches a page (`enum svm_protocol`).
public enum LinkProtocol: String, Sendable, Hashable, Codable {
    case system
    case localVRAM = "local-vram"
    case pciePeerToPeer = "pcie-p2p"
    case fabric

    public init?(raw: UInt32) {
        switch raw {
        case UInt32(SVM_PROTOCOL_SYSTEM.rawValue): self = .system
        case UInt32(SVM_PROTOCOL_LOCAL_VRAM.rawValue): self = .localVRAM
        case UInt32(SVM_PROTOCOL_PCIE_P2P.rawValue): self = .pciePeerToPeer
        case UInt32(SVM_PROTOCOL_FABRIC.rawValue): self = .fabric
        default: return nil
        }
    }

    public var raw: UInt32 {
        switch self {
        case .system: UInt32(SVM_PROTOCOL_SYSTEM.rawValue)
        case .localVRAM: UInt32(SVM_PROTOCOL_LOCAL_VRAM.rawValue)
        case .pciePeerToPeer: UInt32(SVM_PROTOCOL_PCIE_P2P.rawValue)
        case .fabric: UInt32(SVM_PROTOCOL_FABRIC.rawValue)
        }
    }
}

/// The links an interconnect plugin builds (`struct svm_link_info`).
public struct LinkInfo: Sendable, Hashable, Codable {
    public var name: String
    public var linkProtocol: LinkProtocol
    /// Bytes per second in each direction.
    public var bandwidthBytesPerSecond: UInt64
    /// One-way latency of a minimal transfer, in nanoseconds.
    public var latencyNanoseconds: UInt64
    /// How many devices one fabric instance can join.
    public var maxEndpoints: UInt32

    public init(
        name: String, linkProtocol: LinkProtocol, bandwidthBytesPerSecond: UInt64,
        latencyNanoseconds: UInt64, maxEndpoints: UInt32
    ) {
        self.name = name
        self.linkProtocol = linkProtocol
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.latencyNanoseconds = latencyNanoseconds
        self.maxEndpoints = maxEndpoints
    }

    /// `nil` when the plugin wrote a protocol this build does not know.
    public init?(_ raw: svm_link_info) {
        guard let linkProtocol = LinkProtocol(raw: raw.protocol) else { return nil }
        self.name = abiName(raw.name)
        self.linkProtocol = linkProtocol
        bandwidthBytesPerSecond = raw.has(\.bandwidth_bytes_per_s) ? raw.bandwidth_bytes_per_s : 0
        latencyNanoseconds = raw.has(\.latency_ns) ? raw.latency_ns : 0
        maxEndpoints = raw.has(\.max_endpoints) ? raw.max_endpoints : 0
    }

    public var raw: svm_link_info {
        var raw = svm_link_info.sized()
        setABIName(&raw.name, name)
        raw.protocol = linkProtocol.raw
        raw.bandwidth_bytes_per_s = bandwidthBytesPerSecond
        raw.latency_ns = latencyNanoseconds
        raw.max_endpoints = maxEndpoints
        return raw
    }
}
