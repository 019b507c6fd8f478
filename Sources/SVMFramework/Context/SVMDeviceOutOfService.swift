/// A device the host took out of service (a zap of it kept failing): no kernel runs on it.
public struct SVMDeviceOutOfService: Error, Hashable, Sendable, CustomStringConvertible {
    public let device: String
    public let reason: String

    public var description: String { "device \(device) is out of service: \(reason)" }
}
