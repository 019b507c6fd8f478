import Foundation
import SVMFramework
import SVMPluginKit

/// The human-readable form of `plugins info`.
enum PluginReportText {
    static func render(_ report: PluginReport) -> String {
        var lines = ["\(report.name) \(report.version)" + (report.description.isEmpty ? "" : " - \(report.description)")]
        lines.append("  kind:    \(report.kind.rawValue)")
        lines.append("  ABI:     \(report.abi) (plugin built for \(report.pluginABI))")
        lines.append("  path:    \(report.path)")
        lines.append("  origin:  \(report.origin.description)")
        if let devices = report.devices {
            lines.append("  devices: \(devices.count)")
            for device in devices {
                let info = device.info
                let sizes = info.pageSizes.map(ByteCount.format).joined(separator: ", ")
                var line = "    [\(device.index)] \(info.name): \(kindText(info.flags))"
                if info.vendorID != 0 {
                    line += String(format: ", PCI %04x:%04x", info.vendorID, info.deviceID)
                }
                line += ", memory \(ByteCount.format(info.memoryBytes)), GPU page sizes \(sizes)"
                if !info.location.isEmpty { line += ", at \(info.location)" }
                lines.append(line)
                if let pagemap = device.pagemap {
                    lines.append(
                        "        pagemap: \(ByteCount.format(pagemap.capacityBytes)), min page \(ByteCount.format(UInt64(pagemap.minPageSize)))")
                }
                if let problem = device.problem { lines.append("        not queried: \(problem)") }
            }
        }
        if let link = report.link {
            let gigabytes = Self.gigabytes(link.bandwidthBytesPerSecond)
            lines.append(
                "  link:    \(link.name) (\(link.linkProtocol.rawValue)), \(gigabytes) GB/s per direction, \(link.latencyNanoseconds) ns latency, up to \(link.maxEndpoints) devices")
        }
        if let topology = report.topology, !topology.isEmpty {
            lines.append("  topology: \(topology.count) links")
            for link in topology {
                let kind = link.kind == .pcie ? "PCIe Gen\(link.pcieGeneration) x\(link.lanes)" : "fabric x\(link.lanes)"
                lines.append("    \(link.endA) - \(link.endB): \(kind), \(Self.gigabytes(link.bandwidthBytesPerSecond)) GB/s per direction, \(link.latencyNanoseconds) ns")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Bytes per second as GB/s with one decimal ("31.5").
    private static func gigabytes(_ bytesPerSecond: UInt64) -> String {
        String(format: "%.1f", Double(bytesPerSecond) / 1e9)
    }

    private static func kindText(_ flags: DeviceFlags) -> String {
        flags.contains(.hardware) ? "hardware" : flags.contains(.simulated) ? "simulated" : "device"
    }
}
