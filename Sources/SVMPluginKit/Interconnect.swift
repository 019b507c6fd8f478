/// The interconnect ops of the plugin ABI (`struct svm_interconnect_ops`), in Swift.
public protocol Interconnect: AnyObject, Sendable {
    /// [required] The links this fabric builds. Host thread, no host lock.
    func linkInfo() throws -> LinkInfo

    /// [optional] Whether the fabric can join devices `a` and `b`. The default says yes,
    /// which is what the host assumes of a C plugin without the op. Host thread.
    func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool

    /// [optional, ABI 1.6] Every link of the topology. The default has none.
    func links() throws -> [TopologyLink]

    /// [optional, ABI 1.6] How the device at location `from` reaches the memory of the
    /// device at location `to`; `nil` when it cannot directly (`-ENOLINK`: through system
    /// memory only). Throw `PluginErrno.noDevice` for a location the topology does not
    /// have. The default has no paths.
    func path(from: String, to: String) throws -> PeerPath?
}

extension Interconnect {
    public func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool { true }
    public func links() throws -> [TopologyLink] { [] }
    public func path(from: String, to: String) throws -> PeerPath? { nil }
}
