/// The interconnect ops of the plugin ABI (`struct svm_interconnect_ops`), in Swift.
public protocol Interconnect: AnyObject, Sendable {
    /// [required] The links this fabric builds. Host thread, no host lock.
    func linkInfo() throws -> LinkInfo

    /// [optional] Whether the fabric can join devices `a` and `b`. The default says yes,
    /// which is what the host assumes of a C plugin without the op. Host thread.
    func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool
}

extension Interconnect {
    public func canConnect(_ a: DeviceInfo, _ b: DeviceInfo) throws -> Bool { true }
}
