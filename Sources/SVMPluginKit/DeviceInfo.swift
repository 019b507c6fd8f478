import CSVMPluginABI

/// How a device is driven (`enum svm_device_flags`).
public struct DeviceFlags: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Time is simulated and device memory is host memory.
    public static let simulated = DeviceFlags(rawValue: UInt32(SVM_DEVICE_SIMULATED.rawValue))
    /// A real device driven through its kernel driver.
    public static let hardware = DeviceFlags(rawValue: UInt32(SVM_DEVICE_HARDWARE.rawValue))
}

/// One device of a device plugin (`struct svm_device_info`).
public struct DeviceInfo: Sendable, Hashable, Codable {
    public var name: String
    public var flags: DeviceFlags
    /// PCI vendor and device id, 0 for a simulated device.
    public var vendorID: UInt32
    public var deviceID: UInt32
    /// Device-local memory in bytes.
    public var memoryBytes: UInt64
    /// The granularities the device page table maps, in bytes, ascending.
    public var pageSizes: [UInt64]
    /// Where the device sits, which interconnects name it by (ABI 1.6): a PCI address or a
    /// simulated slot ("sim:0"); empty when unknown.
    public var location: String

    public init(
        name: String, flags: DeviceFlags, vendorID: UInt32 = 0, deviceID: UInt32 = 0,
        memoryBytes: UInt64, pageSizes: [UInt64], location: String = ""
    ) {
        self.location = location
        self.name = name
        self.flags = flags
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.memoryBytes = memoryBytes
        self.pageSizes = pageSizes
    }

    public init(_ raw: svm_device_info) {
        name = abiName(raw.name)
        flags = DeviceFlags(rawValue: raw.flags)
        vendorID = raw.has(\.vendor_id) ? raw.vendor_id : 0
        deviceID = raw.has(\.device_id) ? raw.device_id : 0
        memoryBytes = raw.has(\.memory_bytes) ? raw.memory_bytes : 0
        let mask = raw.has(\.page_size_mask) ? raw.page_size_mask : 0
        pageSizes = (0..<64).filter { mask & (1 << $0) != 0 }.map { UInt64(1) << UInt64($0) }
        location = raw.has(\.location) ? abiName(raw.location) : ""
    }

    public var raw: svm_device_info {
        var raw = svm_device_info.sized()
        setABIName(&raw.name, name)
        raw.flags = flags.rawValue
        raw.vendor_id = vendorID
        raw.device_id = deviceID
        raw.memory_bytes = memoryBytes
        raw.page_size_mask = pageSizes.reduce(0) { $0 | $1 }
        setABIName(&raw.location, location)
        return raw
    }
}
