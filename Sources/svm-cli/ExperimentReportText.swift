import SVMFramework
import SVMPluginKit

/// The human-readable form of an experiment report: what ran, whether it verified, and what
/// each device and link did, with units.
struct ExperimentReportText {
    let report: ExperimentReport
    let traceFile: String?

    init(_ report: ExperimentReport, traceFile: String?) {
        self.report = report
        self.traceFile = traceFile
    }

    var text: String {
        let configuration = report.configuration
        let timing = configuration.timing
        let link = timing.link
        var lines: [String] = []
        lines.append("Experiment   \(configuration.workload.rawValue): \(report.workload)")
        let interconnect = report.devices.count > 1 ? ", interconnect \(configuration.interconnect.rawValue)" : ""
        lines.append("Topology     \(report.devices.map(\.name).joined(separator: ", ")) with \(ByteCount.format(configuration.deviceMemoryBytes)) of device memory\(report.devices.count > 1 ? " each" : "")\(interconnect), "
            + "\(link.name) (\(Self.rate(link.bytesPerSecond)) per direction, \(Self.time(link.latencyNanoseconds)) latency), "
            + "\(timing.copyEngines) copy engine(s), \(Self.time(timing.faultServiceNanoseconds)) per fault batch")
        let policy = switch configuration.policy {
        case .migrateOnDeviceFault: "migrate to device memory on device fault"
        case .systemMemory: "map system memory in place"
        case .accessPeerInPlace: "migrate to device memory on device fault, but map a peer's memory in place"
        }
        lines.append("Policy       \(policy); seed \(configuration.seed)")
        let verification = report.verification
        if report.verified {
            lines.append("Result       verified: all \(verification.checked) values right, checked on the CPU")
        } else if verification.lost > 0 {
            lines.append("Result       NOT verified: \(verification.lost) values lost (not read: see Losses), \(verification.wrong) of \(verification.checked) checked values wrong"
                + (verification.firstWrong.map { " (first: \($0))" } ?? ""))
        } else {
            lines.append("Result       NOT verified: \(verification.wrong) of \(verification.checked) values wrong (first: \(verification.firstWrong ?? "none checked"))")
        }
        lines.append("")
        lines.append("Simulated time  \(Self.time(report.simulatedNanoseconds))")
        for device in report.devices {
            let faults = device.faults
            let latency = report.faultServiceLatency
            lines.append("")
            lines.append("Device \(device.name)")
            lines.append("  kernels          \(device.kernels)")
            lines.append("  device faults    \(faults.total) (read \(faults.read), write \(faults.write), atomic \(faults.atomic)) in \(device.faultBatches) batch(es)")
            if latency.count > 0 {
                lines.append("  fault service    p50 \(Self.time(latency.p50)), p90 \(Self.time(latency.p90)), p99 \(Self.time(latency.p99)), max \(Self.time(latency.max)) (a fault waits for its whole batch)")
            }
            lines.append("  migrations       to device \(device.migrationsToDevice) (\(ByteCount.format(device.bytesToDevice))), to system \(device.migrationsToSystem) (\(ByteCount.format(device.bytesToSystem))), evictions \(device.evictions)")
            if device.migrationsToPeers + device.migrationsFromPeers > 0 {
                lines.append("  peer migrations  out \(device.migrationsToPeers) (\(ByteCount.format(device.bytesToPeers))), in \(device.migrationsFromPeers) (\(ByteCount.format(device.bytesFromPeers))), directly over peer paths")
            }
            lines.append("  accesses         \(device.accesses); TLB hits \(device.tlbHits), misses \(device.tlbMisses) (each a page-table walk)")
            lines.append("  remote accesses  read \(ByteCount.format(device.remoteBytesRead)), written \(ByteCount.format(device.remoteBytesWritten)) (system memory in place, over the link)")
            if device.peerBytesRead + device.peerBytesWritten > 0 {
                lines.append("  peer accesses    read \(ByteCount.format(device.peerBytesRead)), written \(ByteCount.format(device.peerBytesWritten)) (peers' memory in place, over peer paths)")
            }
            let dma = device.dma
            if !dma.isEmpty {
                lines.append("  DMA mapping      \(dma.allocs) IOVA allocation(s), \(dma.links) link(s), \(dma.syncs) sync(s); \(dma.failedAllocs) failed allocation(s), \(dma.pageMaps) page(s) mapped one by one; \(Self.time(device.dmaNanoseconds)) of fault service")
            }
            lines.append("  busy             \(Self.time(device.busyNanoseconds)): executing \(Self.time(device.executionNanoseconds)), servicing faults \(Self.time(device.faultServiceNanoseconds))")
        }
        let failedCopies = report.svm["failedCopies"] ?? 0, givenUp = report.svm["failedMigrations"] ?? 0
        if failedCopies + givenUp > 0 {
            lines.append("")
            lines.append("Failures     \(failedCopies) device copy(ies) failed; \(givenUp) migration(s) to device memory given up (the data stayed in system memory); copies back to system memory are tried again")
        }
        if let failedZaps = report.svm["failedZaps"], failedZaps > 0 {
            if failedCopies + givenUp == 0 { lines.append("") }
            lines.append("\(failedCopies + givenUp == 0 ? "Failures     " : "             ")\(failedZaps) zap(s) failed; each is tried \(SVMDevice.zapAttempts) times before the device is taken out of service")
        }
        if let thrashing = report.svm["thrashingAvoided"], thrashing > 0 {
            lines.append("")
            lines.append("Thrashing    \(thrashing) device fault(s) on ranges their kernel had evicted were mapped in system memory instead of migrated again (device memory cannot hold what one step needs)")
        }
        let moved = report.svm["bytesMoved"] ?? 0, copied = report.svm["bytesCopied"] ?? 0
        if moved + copied > 0 {
            let fallbacks = report.svm["zeroCopyFallbacks"] ?? 0
            lines.append("")
            lines.append("Data path    \(ByteCount.format(UInt64(moved))) moved without copying (UFFDIO_MOVE), \(ByteCount.format(UInt64(copied))) copied through staging memory"
                + (fallbacks > 0 ? "; \(fallbacks) zero-copy migration(s) fell back to copying (pages pinned, shared or locked)" : ""))
        }
        if let mirror = report.mirror {
            lines.append("")
            lines.append("Mirror       CPU faults through \(mirror): "
                + (mirror == UserFaultFD.Opening.userModeOnly.rawValue ? "user-mode faults only" : "user-mode and kernel-mode faults (read(2), write(2), mlock reach device-resident memory)")
                + (report.configuration.handlerPlacement == .followFaultingThread ? "; the handler follows the faulting thread's CPU, at idle priority" : ""))
        }
        if !report.limitations.isEmpty {
            if report.mirror == nil { lines.append("") }
            for (index, limitation) in report.limitations.enumerated() {
                lines.append((index == 0 ? "Limits       " : "             ") + limitation)
            }
        }
        let resets = report.devices.reduce(0) { $0 + $1.resets }
        let lostRanges = report.devices.reduce(0) { $0 + $1.lostRanges }
        if resets + lostRanges > 0 {
            let lostBytes = report.devices.reduce(0) { $0 + $1.lostBytes }
            lines.append("")
            lines.append("Losses       \(resets) device reset(s); \(lostRanges) range(s), \(ByteCount.format(lostBytes)) of data lost with device memory "
                + "(their pages raise SIGBUS when read, never zeros); \(report.skippedKernels) kernel(s) not run because they use lost data")
        }
        for link in report.links {
            lines.append("")
            lines.append("Link \(link.name), \(link.endpoints)")
            for (label, direction) in [("host→device", link.hostToDevice), ("device→host", link.deviceToHost)] {
                lines.append("  \(label)      \(ByteCount.format(direction.bytes)) in \(direction.transfers) transfer(s), busy \(Self.time(direction.busyNanoseconds)) (\(Self.percent(direction.busyNanoseconds, of: report.simulatedNanoseconds)) of the run)")
            }
        }
        if report.devices.count > 1 {
            lines.append("")
            let groups = report.ownerGroups.map { "{\($0.joined(separator: ", "))}" }.joined(separator: " ")
            lines.append("Owner groups \(groups) (devices in one group migrate into each other's memory directly)")
        }
        let idle = report.peerLinks.filter { $0.carried.transfers == 0 }.count
        if idle > 0 { lines.append("Peer paths   \(report.peerLinks.count), of which \(idle) carried nothing (not listed)") }
        for peer in report.peerLinks where peer.carried.transfers > 0 {
            let carried = peer.carried
            lines.append("Peer \(peer.from)→\(peer.to) \(peer.linkProtocol.rawValue) over \(peer.route): \(ByteCount.format(carried.bytes)) in \(carried.transfers) transfer(s), busy \(Self.time(carried.busyNanoseconds)) (\(Self.percent(carried.busyNanoseconds, of: report.simulatedNanoseconds)) of the run)")
        }
        // The links under the routes, with several devices: where routes over one link
        // slowed each other down (with one device they repeat its host link).
        for hop in report.hops where hop.carried.transfers > 0 && report.devices.count > 1 {
            let carried = hop.carried
            lines.append("Hop  \(hop.link) \(hop.from)→\(hop.to): \(ByteCount.format(carried.bytes)) in \(carried.transfers) transfer(s), busy \(Self.time(carried.busyNanoseconds)) (\(Self.percent(carried.busyNanoseconds, of: report.simulatedNanoseconds)) of the run)")
        }
        lines.append("")
        let wall = report.wallClock
        lines.append("Wall clock   \(String(format: "%.2f", wall.seconds)) s on this machine (\(Self.count(wall.accessesPerSecond)) simulated accesses/s, \(Self.count(wall.faultsPerSecond)) faults/s); the only line that changes between runs")
        if let traceFile { lines.append("Trace        \(traceFile) (open it at https://ui.perfetto.dev)") }
        return lines.joined(separator: "\n")
    }

    static func time(_ nanoseconds: UInt64) -> String {
        switch nanoseconds {
        case ..<1_000: "\(nanoseconds) ns"
        case ..<1_000_000: String(format: "%.1f µs", Double(nanoseconds) / 1e3)
        case ..<1_000_000_000: String(format: "%.3f ms", Double(nanoseconds) / 1e6)
        default: String(format: "%.3f s", Double(nanoseconds) / 1e9)
        }
    }

    static func rate(_ bytesPerSecond: Double) -> String { String(format: "%.1f GB/s", bytesPerSecond / 1e9) }

    static func percent(_ part: UInt64, of whole: UInt64) -> String {
        whole == 0 ? "0%" : String(format: "%.1f%%", Double(part) * 100 / Double(whole))
    }

    static func count(_ value: Double) -> String {
        switch value {
        case ..<1e3: String(format: "%.0f", value)
        case ..<1e6: String(format: "%.1fk", value / 1e3)
        default: String(format: "%.2fM", value / 1e6)
        }
    }
}
