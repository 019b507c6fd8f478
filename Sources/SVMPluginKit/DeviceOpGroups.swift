/// The optional op groups of ABI 1.1 that a Swift device plugin implements.
///
/// The exporter puts a group's C ops into the tables only when the plugin declares it in
/// ``DevicePlugin/implementedOps``, so the host sees from the tables alone what a device can
/// do, without calling an op to find out (a C plugin simply leaves the pointers NULL).
public struct DeviceOpGroups: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `devmem_alloc`, `devmem_free`, `copy_to_devmem`, `copy_to_ram`: the
    /// `allocateDeviceMemory`, `freeDeviceMemory`, `copyToDeviceMemory` and
    /// `copyFromDeviceMemory` requirements of ``OpenDevice``.
    public static let deviceMemory = DeviceOpGroups(rawValue: 1 << 0)
    /// `bind`, `zap`, `run_kernel`: ``OpenDevice/bind(address:size:pieces:access:)``,
    /// ``OpenDevice/zap(address:size:)`` and ``OpenDevice/runKernel(_:)``.
    public static let pageTable = DeviceOpGroups(rawValue: 1 << 1)
}
