import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// An SVM context with SimDevice loaded through the plugin host, as a user sets it up, with
/// the built-in P2PFabric (by default a fabric link between every two devices; the
/// `interconnect` options change that, e.g. `["topology": "none"]`).
final class SimDeviceFixture: @unchecked Sendable {
    let host: PluginHost
    let context: SVMContext
    let devices: [SVMDevice]
    /// Every test with a fixture fails with thread stacks, instead of hanging, if it does
    /// not shut the fixture down in time.
    private let watchdog: Watchdog

    init(devices count: Int = 1, memory: String = "64M", policy: MigrationPolicy = .migrateOnDeviceFault,
         configuration: SVMConfiguration = .standard, options: [String: String] = [:],
         kernelFaults: KernelFaults = .whenPermitted, handlerPlacement: HandlerPlacement = .scheduler,
         interconnect: [String: String] = [:], test: String = #function) throws {
        watchdog = Watchdog(seconds: 300, "\(test) did not shut its SimDevice fixture down")
        host = makeHost(options: [
            "SimDevice": options.merging(["devices": "\(count)", "memory": memory]) { mine, _ in mine },
            "P2PFabric": interconnect,
        ])
        let context = SVMContext(configuration: configuration, policy: policy, host: host, kernelFaults: kernelFaults, handlerPlacement: handlerPlacement)
        self.context = context
        devices = try (0..<count).map { try context.openDevice(plugin: "SimDevice", index: $0) }
    }

    var device: SVMDevice { devices[0] }

    func shutdown() {
        for device in devices { context.close(device) }
        context.shutdown()
        watchdog.cancel()
    }

    func count(_ name: String) -> Int { context.statistics.snapshot[name]! }

    /// The device reads `size` bytes at `address` into a host buffer (dmirror's read).
    func deviceRead(_ address: UInt64, _ size: Int, on device: SVMDevice? = nil) throws -> (bytes: [UInt8], result: KernelResult) {
        var bytes = [UInt8](repeating: 0, count: size)
        let result = try bytes.withUnsafeMutableBytes { buffer in
            try (device ?? self.device).run(.read(source: address, size: UInt64(size), hostBuffer: UInt64(UInt(bitPattern: buffer.baseAddress!))))
        }
        return (bytes, result)
    }

    /// The device writes `bytes` at `address` from a host buffer (dmirror's write).
    func deviceWrite(_ address: UInt64, _ bytes: [UInt8], on device: SVMDevice? = nil) throws -> KernelResult {
        try bytes.withUnsafeBytes { buffer in
            try (device ?? self.device).run(.write(destination: address, size: UInt64(bytes.count), hostBuffer: UInt64(UInt(bitPattern: buffer.baseAddress!))))
        }
    }

    /// Runs a kernel that must complete.
    @discardableResult
    func run(_ kernel: DeviceKernel, on device: SVMDevice? = nil) throws -> KernelResult {
        let result = try (device ?? self.device).run(kernel)
        #expect(result.stoppedBy == nil, "kernel \(kernel) stopped: \(String(describing: result.stoppedBy)) at 0x\(String(result.faultAddress, radix: 16))")
        return result
    }
}

/// How migrations move data in a test: SimDevice's zero-copy path, or the copy path.
enum MigrationPath: String, Sendable, Codable, CustomTestStringConvertible {
    case zeroCopy = "zero-copy"
    case copy

    var testDescription: String { rawValue }

    /// The SimDevice options that select it.
    var options: [String: String] { ["zero-copy": self == .zeroCopy ? "on" : "off"] }

    /// Checks that migrations went this way (and, `exclusively`, never the other: a move
    /// may fall back to copying when a page is pinned for a moment).
    func checkUsed(_ f: SimDeviceFixture, exclusively: Bool) {
        let moved = f.count("bytesMoved")
        let copied = f.count("bytesCopied")
        switch self {
        case .zeroCopy:
            #expect(moved > 0, "no migration moved pages")
            if exclusively { #expect(copied == 0, "\(copied) bytes copied on the zero-copy path") }
        case .copy:
            #expect(copied > 0 && moved == 0, "copy path: \(moved) bytes moved, \(copied) copied")
        }
    }
}
