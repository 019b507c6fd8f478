import CSVMPluginABI
import SVMPluginKit

/// An interconnect plugin's C table seen through the Swift ``Interconnect`` protocol.
final class LoadedInterconnect: Interconnect, @unchecked Sendable {
    // Immutable: the host's copy of the plugin's table, and the plugin kept alive while we
    // exist.
    private let ops: svm_interconnect_ops
    private let lifetime: PluginLifetime
    private var context: UnsafeMutableRawPointer? { lifetime.context }

    init(ops: svm_interconnect_ops, lifetime: PluginLifetime) {
        self.ops = ops
        self.lifetime = lifetime
    }

    func linkInfo() throws -> LinkInfo {
        var info = svm_link_info.sized()
        try PluginErrno.check(ops.link_info!(context, &info))
        guard let link = LinkInfo(info) else {
            throw PluginContractViolation("link_info returned protocol \(info.protocol), which this host does not know")
        }
        return link
    }

    func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool {
        // Optional op: absent means any two devices can be joined.
        guard ops.has(\.can_connect), let canConnect = ops.can_connect else {
            return true
        }
        var rawA = a.raw
        var rawB = b.raw
        let status = canConnect(context, &rawA, &rawB)
        if status == PluginErrno.notSupported.status { return false }
        try PluginErrno.check(status)
        return true
    }

    /// The topology's links, each checked; none from a plugin without the 1.6 ops.
    func links() throws -> [TopologyLink] {
        guard ops.has(\.link_count), let linkCount = ops.link_count, ops.has(\.topology_link), let describe = ops.topology_link else {
            return []
        }
        var count: UInt32 = 0
        try PluginErrno.check(linkCount(context, &count))
        guard count <= Self.maxLinks else {
            throw PluginContractViolation("link_count returned \(count) links; at most \(Self.maxLinks)")
        }
        return try (0..<count).map { index in
            var raw = svm_topology_link.sized()
            try PluginErrno.check(describe(context, index, &raw))
            guard let link = TopologyLink(raw) else {
                throw PluginContractViolation("topology_link(\(index)) returned link kind \(raw.kind), which this host does not know")
            }
            return link
        }
    }

    /// The most links a topology may have: a full fabric of `SVM_MAX_DEVICES` devices
    /// would have 32 640, far more than any machine; 4096 bounds what the host reads.
    static let maxLinks: UInt32 = 4096

    /// The path from the device at location `from` to the memory of the one at `to`, checked;
    /// `nil` for `-ENOLINK` or a plugin without the op (no peer path).
    func path(from: String, to: String) throws -> PeerPath? {
        guard ops.has(\.path), let query = ops.path else { return nil }
        var raw = svm_path.sized()
        let status = query(context, from, to, &raw)
        if status == PluginErrno.noLink.status { return nil }
        try PluginErrno.check(status)
        do {
            return try PeerPath(checking: raw)
        } catch {
            throw PluginContractViolation("path(\(from), \(to)) returned \(error)")
        }
    }
}
