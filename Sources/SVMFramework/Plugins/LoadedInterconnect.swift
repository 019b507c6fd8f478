import CSVMPluginABI
import SVMPluginKit

/// An interconnect plugin's C table seen through the Swift ``Interconnect`` protocol.
final class LoadedInterconnect: Interconnect, @unchecked Sendable {
    // Immutable: the plugin's static table and its context.
    private let ops: UnsafePointer<svm_interconnect_ops>
    private let context: UnsafeMutableRawPointer?

    init(ops: UnsafePointer<svm_interconnect_ops>, context: UnsafeMutableRawPointer?) {
        self.ops = ops
        self.context = context
    }

    func linkInfo() throws -> LinkInfo {
        var info = svm_link_info.sized()
        try PluginErrno.check(ops.pointee.link_info!(context, &info))
        guard let link = LinkInfo(info) else { throw PluginErrno.invalidArgument }
        return link
    }

    func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool {
        // Optional op: absent means any two devices can be joined.
        guard ops.pointee.has(\.can_connect), let canConnect = ops.pointee.can_connect else {
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
