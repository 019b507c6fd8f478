import SVMPluginKit

/// The machine P2PFabric simulates: a root complex, PCIe links (through one switch, or one
/// root port per device) and fabric links between devices, in slots named `sim:0` ...
/// `sim:N-1` (SimDevice's device locations).
///
/// Paths follow what hardware allows:
/// - a fabric route, when fabric links join the two devices (fewest hops);
/// - else a PCIe route that does not cross the root complex: peer-to-peer through a switch;
/// - else none (`-ENOLINK`). Many root complexes do not route peer traffic between their
///   ports, and Linux's `pci_p2pdma` refuses a path through a host bridge unless the bridge
///   is on its allow list, so the topology never counts on it.
struct P2PFabricTopology: Sendable {
    enum Shape: String, Sendable, CaseIterable {
        /// Every device under one switch, and a fabric link between every two devices.
        case fabric
        /// Every device under one switch: peers reach each other by PCIe P2P through it.
        case pcie
        /// Every device on a root port of its own: no peer paths.
        case none
    }

    static let root = "root"
    static let rootSwitch = "switch0"

    let shape: Shape
    let links: [TopologyLink]

    /// The slot name of device `index`.
    static func slot(_ index: Int) -> String { "sim:\(index)" }

    /// - Parameters:
    ///   - pcie: a device's PCIe link (and the switch's uplink); named per use.
    ///   - fabric: a fabric link.
    init(shape: Shape, devices: Int, pcie: TopologyLink, fabric: TopologyLink) {
        self.shape = shape
        func link(_ template: TopologyLink, _ a: String, _ b: String) -> TopologyLink {
            var link = template
            link.name = "\(a)-\(b)"
            link.endA = a
            link.endB = b
            return link
        }
        let slots = (0..<devices).map(Self.slot)
        var links: [TopologyLink] = []
        switch shape {
        case .fabric, .pcie:
            links.append(link(pcie, Self.root, Self.rootSwitch))
            links += slots.map { link(pcie, Self.rootSwitch, $0) }
        case .none:
            links += slots.map { link(pcie, Self.root, $0) }
        }
        if shape == .fabric {
            for (i, a) in slots.enumerated() {
                for b in slots[(i + 1)...] { links.append(link(fabric, a, b)) }
            }
        }
        self.links = links
    }

    /// Whether `node` is a node of the topology.
    func has(_ node: String) -> Bool { links.contains { $0.joins(node) } }

    /// The path from device `from` to device `to`, `nil` when there is none (see the type).
    /// - Throws: `PluginErrno.noDevice` for a location that is no slot of the topology.
    func path(from: String, to: String) throws(PluginErrno) -> PeerPath? {
        guard has(from), has(to), from.hasPrefix("sim:"), to.hasPrefix("sim:") else { throw .noDevice }
        guard from != to else { return nil }
        if let hops = route(from: from, to: to, over: links.filter { $0.kind == .fabric }) {
            return PeerPath(linkProtocol: .fabric, hops: hops)
        }
        let pcie = links.filter { $0.kind == .pcie }
        if let hops = route(from: from, to: to, over: pcie, avoiding: Self.root) {
            return PeerPath(linkProtocol: .pciePeerToPeer, hops: hops)
        }
        return nil
    }

    /// The fewest links from `from` to `to` over `links`, not passing through `avoiding`;
    /// breadth first, links in their order, so the answer is always the same.
    private func route(from: String, to: String, over links: [TopologyLink], avoiding: String? = nil) -> [TopologyLink]? {
        var reachedBy: [String: TopologyLink] = [:]
        var frontier = [from]
        var seen: Set<String> = [from]
        while !frontier.isEmpty, reachedBy[to] == nil {
            var next: [String] = []
            for node in frontier where node == from || node != avoiding {
                for link in links where link.joins(node) {
                    let other = link.otherEnd(than: node)
                    guard !seen.contains(other) else { continue }
                    seen.insert(other)
                    reachedBy[other] = link
                    next.append(other)
                }
            }
            frontier = next
        }
        guard reachedBy[to] != nil else { return nil }
        var hops: [TopologyLink] = []
        var node = to
        while node != from, let link = reachedBy[node] {
            hops.insert(link, at: 0)
            node = link.otherEnd(than: node)
        }
        return hops.count <= 8 ? hops : nil
    }
}
