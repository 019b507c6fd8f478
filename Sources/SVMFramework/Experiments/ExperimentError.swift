import SVMPluginKit

/// Why an experiment could not run or finish.
public enum ExperimentError: Error, Hashable, CustomStringConvertible {
    case outOfMemory(String)
    /// A device plugin or device is missing or unusable.
    case device(String)
    /// A kernel stopped on a fault the host refused.
    /// `why`: what the device fault that stopped it ran into, when it gave up.
    case kernelStopped(kernel: String, status: PluginErrno, address: UInt64, why: String? = nil)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .outOfMemory(let detail): "out of memory: \(detail)"
        case .device(let detail): "device: \(detail)"
        case .kernelStopped(let kernel, let status, let address, let why):
            "kernel '\(kernel)' stopped: \(status) at 0x\(String(address, radix: 16))" + (why.map { "; \($0)" } ?? "")
        case .invalidConfiguration(let detail): "invalid configuration: \(detail)"
        }
    }
}
