import Glibc
@_spi(Testing) import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// The context's watchdog: a migration that makes no progress for the fault timeout is
/// reported (which range, which thread, which way), and the device faults waiting for it fail
/// at their own timeout instead of hanging.
@Suite struct StallWatchdogTests {
    @Test func stuckMigrationIsReportedAndWaitersFail() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        f.context.faultTimeout = .milliseconds(400)
        let stallOnce = Atomic<Bool>(true)
        f.context.injectMigrationStall { _ in
            if stallOnce.exchange(false, ordering: .relaxed) { usleep(2_500_000) }
        }
        let buffer = MappedBuffer(size: 2 << 20)
        buffer.fill(seed: 41)
        let started = ContinuousClock.now
        let stuck = TestThread {
            // Its own fault succeeds once the stall ends: the migration was only slow.
            _ = try? f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address, access: .read)
        }
        usleep(100_000)
        // A second fault on the range waits for the migration, and gives up at its timeout.
        let waiterStart = ContinuousClock.now
        #expect(throws: PluginErrno.tryAgain) {
            try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address + 4096, access: .read)
        }
        let waited = waiterStart.duration(to: .now)
        #expect(waited < .milliseconds(1500), "the waiting fault gave up after \(waited), not when the migration ended")
        // The report comes within 1.25 fault timeouts of the stall (and a look's slack).
        let report = Self.firstReport(of: f, within: .seconds(2), since: started) { _ in true }
        let seenAfter = started.duration(to: .now)
        #expect(report != nil && seenAfter < .seconds(2), "no stall report \(seenAfter) into a 2.5 s stall")
        if let report {
            #expect(report.what.contains("migration of \(AddressInterval(start: buffer.address, end: buffer.address + (2 << 20)))"))
            #expect(report.what.contains("to device \(f.device.deviceID)"))
            #expect(report.thread > 0 && report.stuckFor >= .milliseconds(400))
        }
        stuck.join()
        #expect(f.count("stallsReported") == 1, "reported once")
        #expect(buffer.mismatches(seed: 41) == 0)
    }

    /// The handler's half: a CPU fault whose migration home stalls keeps the handler thread
    /// busy; the watchdog names the handler and the address, and a device fault arriving
    /// meanwhile (which waits for the handler's events) fails at its timeout instead of
    /// hanging. The CPU's read gets the data once the stall ends.
    @Test func stuckHandlerIsReportedAndWaitersFail() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        f.context.faultTimeout = .milliseconds(400)
        let buffer = MappedBuffer(size: 2 << 20)
        buffer.fill(seed: 43)
        _ = try f.deviceRead(buffer.address, buffer.size)
        #expect(f.device.usedDeviceMemory > 0)
        let stallOnce = Atomic<Bool>(true)
        f.context.injectHomeMigrationStall { _ in
            if stallOnce.exchange(false, ordering: .relaxed) { usleep(2_500_000) }
        }
        let started = ContinuousClock.now
        let base = UInt(bitPattern: buffer.base)
        let seen = Atomic<Int>(-1)
        let reader = TestThread {
            // A CPU fault on device-resident data: the handler migrates it home, slowly.
            let bytes = UnsafeMutablePointer<UInt8>(bitPattern: base)!
            seen.store(Int(bytes[100]), ordering: .releasing)
        }
        // Until the handler has read the CPU fault and serves it (slow under ThreadSanitizer):
        // the device fault below waits for the events read before it.
        let readBy = ContinuousClock.now + .seconds(2)
        while !f.context.mirrorHandlerIsBusy && ContinuousClock.now < readBy { usleep(1000) }
        let other = MappedBuffer(size: 2 << 20)
        other.fill(seed: 44)
        let waiterStart = ContinuousClock.now
        #expect(throws: PluginErrno.tryAgain) {
            try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: other.address, access: .read)
        }
        let waited = waiterStart.duration(to: .now)
        #expect(waited < .milliseconds(1500), "the device fault gave up after \(waited), not at its timeout")
        // Both are stuck, and both are reported: the migration home and the handler in it.
        let report = Self.firstReport(of: f, within: .seconds(2), since: started) { $0.what.contains("the CPU fault handler") }
        #expect(report != nil, "no handler report \(started.duration(to: .now)) into a 2.5 s stall: \(f.context.stallReports)")
        #expect(f.context.stallReports.contains { $0.what.contains("to system memory") })
        if let report {
            #expect(report.what.contains("the CPU fault handler"), "\(report.what)")
            #expect(report.what.contains(String(buffer.address, radix: 16)), "\(report.what)")
            #expect(report.thread > 0 && report.stuckFor >= .milliseconds(400))
        }
        reader.join()
        #expect(seen.load(ordering: .acquiring) == Int(MappedBuffer.pattern(100, seed: 43)))
        #expect(buffer.mismatches(seed: 43) == 0)
        #expect(f.count("stallsReported") >= 1)
    }

    /// The first report that `matches`, looked for until `limit` after `started`.
    static func firstReport(
        of f: SimDeviceFixture, within limit: Duration, since started: ContinuousClock.Instant, _ matches: (StallReport) -> Bool
    ) -> StallReport? {
        while started.duration(to: .now) < limit {
            if let report = f.context.stallReports.first(where: matches) { return report }
            usleep(20_000)
        }
        return f.context.stallReports.first(where: matches)
    }

    /// Nothing stalls in an ordinary run: no report.
    @Test func noReportWithoutStall() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        // Long enough that a loaded machine's slowest migration is no stall.
        f.context.faultTimeout = .seconds(2)
        let buffer = MappedBuffer(size: 4 << 20)
        buffer.fill(seed: 42)
        _ = try f.deviceRead(buffer.address, buffer.size)
        usleep(600_000)
        #expect(f.context.stallReports.isEmpty)
        #expect(buffer.mismatches(seed: 42) == 0)
    }
}
