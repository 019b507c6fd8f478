import Synchronization

/// Counters of what the SVM context did, for tests, benchmarks and experiment reports.
public final class SVMStatistics: Sendable {
    /// Faults devices reported (`report_device_fault`), including the ones that failed.
    public let deviceFaults = Atomic<Int>(0)
    /// Device faults answered with an error: unmapped memory or a forbidden access.
    public let failedDeviceFaults = Atomic<Int>(0)
    /// CPU faults on device-resident data, each migrating a range back (`migrate_to_ram`).
    public let cpuFaultMigrations = Atomic<Int>(0)
    /// Ranges brought home from device memory because the process forked (the child gets
    /// the data in its CPU pages; see `ForkPreparation.swift`), and the forks prepared.
    public let forkMigrations = Atomic<Int>(0)
    public let forksPrepared = Atomic<Int>(0)
    /// Protection changes (`mprotect` through libc) that invalidated device mappings of SVM
    /// ranges (see `ProtectionWatch.swift`).
    public let protectionInvalidations = Atomic<Int>(0)
    /// CPU faults on missing pages filled with zeros (never touched, or discarded).
    public let cpuZeroFills = Atomic<Int>(0)
    /// Ranges migrated to device memory, and the bytes they held.
    public let migrationsToDevice = Atomic<Int>(0)
    public let bytesToDevice = Atomic<Int>(0)
    /// Ranges migrated back to system memory (CPU faults, evictions, releases), and bytes.
    public let migrationsToSystem = Atomic<Int>(0)
    public let bytesToSystem = Atomic<Int>(0)
    /// Ranges migrated from one device's memory to another's (directly or through system
    /// memory), and the bytes they held; not counted as migrations to device or to system
    /// memory.
    public let migrationsBetweenDevices = Atomic<Int>(0)
    public let bytesBetweenDevices = Atomic<Int>(0)
    /// Of those, migrations that went directly over a peer path, not through system memory.
    public let peerMigrations = Atomic<Int>(0)
    /// Device faults served by mapping a peer's memory in place (policy `peer`).
    public let peerMappings = Atomic<Int>(0)
    /// Bytes of migrations that moved pages (zero-copy: one `UFFDIO_MOVE`) and that copied
    /// them (through staging memory and the plugin's copy ops), in either direction: a
    /// device-to-device migration counts both of its legs.
    public let bytesMoved = Atomic<Int>(0)
    public let bytesCopied = Atomic<Int>(0)
    /// Zero-copy migrations whose pages would not move (pinned, shared with a child, a
    /// protection changed): they took the copy path.
    public let zeroCopyFallbacks = Atomic<Int>(0)
    /// Ranges evicted because a device ran out of memory.
    public let evictions = Atomic<Int>(0)
    /// Migrations to device memory that were given up (no memory, pages busy, a racing
    /// unmap): the range stayed in system memory.
    public let failedMigrations = Atomic<Int>(0)
    /// Copies to or from device memory the device failed (a migration to device memory then
    /// gives up; one back to system memory tries again).
    public let failedCopies = Atomic<Int>(0)
    /// Zaps a device failed, each attempt (``SVMDevice/zap(_:)`` tries again, then takes the
    /// device out of service).
    public let failedZaps = Atomic<Int>(0)
    /// Device faults on a range the running kernel had evicted (it thrashes): mapped in
    /// place instead of migrated again (see ``ThrashingGuard``).
    public let thrashingAvoided = Atomic<Int>(0)
    /// Device resets reported (`report_device_reset`).
    public let deviceResets = Atomic<Int>(0)
    /// Ranges whose data was lost (a reset, or copies back that kept failing), and bytes:
    /// their CPU pages are poisoned.
    public let lostRanges = Atomic<Int>(0)
    public let lostBytes = Atomic<Int>(0)
    /// Device faults refused because the range's data was lost.
    public let faultsOnLostData = Atomic<Int>(0)

    /// Migrations or handler work that made no progress for the fault timeout, reported by
    /// the context's watchdog (``SVMContext/stallReports``).
    public let stallsReported = Atomic<Int>(0)
    /// 1 when the mirror serves user-mode faults only, so that the kernel's own accesses to
    /// device-resident memory fail (``SVMContext/kernelAccessLimitation``); set once by the
    /// context.
    public let mirrorUserModeOnly = Atomic<Int>(0)

    public init() {}

    /// A copy of every counter, by name, for printing and comparing.
    public var snapshot: [String: Int] {
        [
            "deviceFaults": deviceFaults.load(ordering: .relaxed),
            "failedDeviceFaults": failedDeviceFaults.load(ordering: .relaxed),
            "cpuFaultMigrations": cpuFaultMigrations.load(ordering: .relaxed),
            "cpuZeroFills": cpuZeroFills.load(ordering: .relaxed),
            "forkMigrations": forkMigrations.load(ordering: .relaxed),
            "mirrorUserModeOnly": mirrorUserModeOnly.load(ordering: .relaxed),
            "stallsReported": stallsReported.load(ordering: .relaxed),
            "protectionInvalidations": protectionInvalidations.load(ordering: .relaxed),
            "forksPrepared": forksPrepared.load(ordering: .relaxed),
            "migrationsToDevice": migrationsToDevice.load(ordering: .relaxed),
            "bytesToDevice": bytesToDevice.load(ordering: .relaxed),
            "migrationsToSystem": migrationsToSystem.load(ordering: .relaxed),
            "bytesToSystem": bytesToSystem.load(ordering: .relaxed),
            "migrationsBetweenDevices": migrationsBetweenDevices.load(ordering: .relaxed),
            "bytesBetweenDevices": bytesBetweenDevices.load(ordering: .relaxed),
            "peerMigrations": peerMigrations.load(ordering: .relaxed),
            "peerMappings": peerMappings.load(ordering: .relaxed),
            "bytesMoved": bytesMoved.load(ordering: .relaxed),
            "bytesCopied": bytesCopied.load(ordering: .relaxed),
            "zeroCopyFallbacks": zeroCopyFallbacks.load(ordering: .relaxed),
            "evictions": evictions.load(ordering: .relaxed),
            "failedMigrations": failedMigrations.load(ordering: .relaxed),
            "failedCopies": failedCopies.load(ordering: .relaxed),
            "failedZaps": failedZaps.load(ordering: .relaxed),
            "thrashingAvoided": thrashingAvoided.load(ordering: .relaxed),
            "deviceResets": deviceResets.load(ordering: .relaxed),
            "lostRanges": lostRanges.load(ordering: .relaxed),
            "lostBytes": lostBytes.load(ordering: .relaxed),
            "faultsOnLostData": faultsOnLostData.load(ordering: .relaxed),
        ]
    }
}

extension Atomic where Value == Int {
    /// Adds `amount` (relaxed: counters order nothing).
    func count(_ amount: Int = 1) { add(amount, ordering: .relaxed) }
}
