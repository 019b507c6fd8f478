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
}
