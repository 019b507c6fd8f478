import SVMPluginKit

/// Why an experiment could not run or finish.
public enum ExperimentError: Error, Hashable, CustomStringConvertible {
    case outOfMemory(String)
    /// A device plugin or device is missing or unusable.
    case device(String)
    /// A kernel stopped on a fault the host refused.
    case kernelStopped(kernel: String, status: PluginErrno, address: UInt64)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .outOfMemory(let detail): "out of memory: \(detail)"
        case .device(let detail): "device: \(detail)"
        case .kernelStopped(let kernel, let status, let address):
            "kernel '\(kernel)' stopped: \(status) at 0x\(String(address, radix: 16))"
        case .invalidConfiguration(let detail): "invalid configuration: \(detail)"
        }
    }
}
