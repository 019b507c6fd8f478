import SVMPluginKit

/// SimDevice's options, read once at init; a bad value fails init with a message.
struct SimDeviceConfiguration: Sendable {
    /// The GPU page-table granularities, as Xe's: 4 KiB, 64 KiB and 2 MiB.
    static let pageTableSizes: [UInt64] = [4 << 10, 64 << 10, 2 << 20]

    var deviceCount = 1
    var memoryBytes: UInt64 = 1 << 30
    var minPageSize: UInt32 = 4 << 10
    var timing = SimDeviceTiming()
    /// Fault injection: every Nth device-memory allocation fails with `ENOMEM`, every Nth
    /// copy to or from device memory with `EIO` (0: never).
    var failAllocationEvery = 0
    var failCopyEvery = 0
    /// Fault injection: every Nth zap fails with `EIO` and leaves the translations in place
    /// (0: never).
    var failZapEvery = 0
    /// Fault injection: every Nth copy out of device memory (`copy_to_ram`) fails with `EIO`
    /// (0: never); copies in still work.
    var failCopyOutEvery = 0
    /// Fault injection: the device resets once, after its Nth kernel (0: never), losing
    /// the contents of its memory.
    var resetAfterKernel = 0
    /// Whether the device memory is declared host memory (ABI 1.4), so that the host
    /// migrates by moving pages instead of copying them. Off: the copy path, for comparing.
    var zeroCopy = true

    init(options: (String) -> String?) throws {
        if let text = options("devices") {
            guard let count = Int(text), (1...64).contains(count) else {
                throw PluginOptionError(plugin: "SimDevice", key: "devices", value: text, expected: "1 to 64")
            }
            deviceCount = count
        }
        if let text = options("memory") {
            guard let bytes = ByteCount.parse(text), bytes >= 2 << 20, bytes % (2 << 20) == 0
            else {
                throw PluginOptionError(plugin: "SimDevice", 
                    key: "memory", value: text, expected: "a multiple of 2 MiB, e.g. 512M or 4G")
            }
            memoryBytes = bytes
        }
        if let text = options("min-page") {
            guard let bytes = ByteCount.parse(text), bytes == 4 << 10 || bytes == 64 << 10 else {
                throw PluginOptionError(plugin: "SimDevice", key: "min-page", value: text, expected: "4K or 64K")
            }
            minPageSize = UInt32(bytes)
        }
        func integer(_ key: String, _ limits: ClosedRange<Int>) throws -> Int? {
            guard let text = options(key) else { return nil }
            guard let value = Int(text), limits.contains(value) else {
                throw PluginOptionError(plugin: "SimDevice", key: key, value: text, expected: "an integer from \(limits.lowerBound) to \(limits.upperBound)")
            }
            return value
        }
        func positive(_ key: String, unit: String, _ limits: ClosedRange<Double>) throws -> Double? {
            guard let text = options(key) else { return nil }
            guard let value = Double(text), value.isFinite, limits.contains(value) else {
                throw PluginOptionError(
                    plugin: "SimDevice", key: key, value: text,
                    expected: "a number of \(unit) from \(limits.lowerBound) to \(limits.upperBound)")
            }
            return value
        }
        if let units = try integer("execution-units", 1...4096) { timing.executionUnits = units }
        // Bounds far outside any real device's, so that the simulated times stay in range.
        if let gigahertz = try positive("clock", unit: "GHz", 0.001...1000) { timing.issueNanoseconds = 1 / gigahertz }
        if let gigabytes = try positive("memory-bandwidth", unit: "GB/s", 0.001...1_000_000) {
            timing.memoryBytesPerSecond = gigabytes * 1e9
        }
        if let entries = try integer("tlb-entries", 1...1 << 20) { timing.tlbEntries = entries }
        if let walk = try integer("walk-ns", 0...1_000_000) { timing.walkNanoseconds = UInt64(walk) }
        if let batch = try integer("fault-batch", 1...65536) { timing.faultBatch = batch }
        if let every = try integer("fail-alloc-every", 0...1 << 30) { failAllocationEvery = every }
        if let every = try integer("fail-copy-every", 0...1 << 30) { failCopyEvery = every }
        if let every = try integer("fail-zap-every", 0...1 << 30) { failZapEvery = every }
        if let every = try integer("fail-copy-out-every", 0...1 << 30) { failCopyOutEvery = every }
        if let kernel = try integer("reset-after-kernel", 0...1 << 30) { resetAfterKernel = kernel }
        if let text = options("zero-copy") {
            switch text {
            case "on": zeroCopy = true
            case "off": zeroCopy = false
            default: throw PluginOptionError(plugin: "SimDevice", key: "zero-copy", value: text, expected: "on or off")
            }
        }
    }
}
