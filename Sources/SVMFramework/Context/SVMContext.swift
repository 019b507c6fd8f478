import CSVMPlatform
import Glibc
import SVMPluginKit
import Synchronization

/// The framework's system allocator (what the xe driver builds on `drm_gpusvm`): one SVM
/// space mirroring this process's address space with userfaultfd, the devices that use it
/// through their plugins, and the migrations between system and device memory.
///
/// The thin owner of the space, the mirror and the devices. A device faults on any CPU
/// address; the fault path (`DeviceFaultPath`) finds or makes the range, migrates it to the
/// device's pagemap when it can (else maps the CPU pages in place), and binds it in the
/// device's page table under the notifier lock if no invalidation intervened. A CPU
/// touch of device-resident data faults into the mirror's handler thread, which invalidates
/// every device mapping of the range and moves the data back.
///
/// If userfaultfd is unavailable (seccomp, `vm.unprivileged_userfaultfd`), devices still
/// use CPU memory in place; nothing migrates, and device mappings are not invalidated when
/// memory is unmapped (a device then gets a fault error on unmapped memory but could see
/// memory mapped again at the same address). ``mirrorUnavailableReason`` says why.
public final class SVMContext: DeviceFaultHandler, CPUMirrorClient, @unchecked Sendable {
    public let space: SVMSpace
    public let statistics = SVMStatistics()
    /// The steps taken, when enabled (for debugging races).
    public let trace = SVMTrace()
    /// What cost simulated time, when enabled (experiments).
    public let activity = SVMActivityLog()
    /// The CPU addresses whose data was lost (a device reset): poisoned pages.
    public let lostMemory = LostMemory()
    public let policy: MigrationPolicy
    /// Why CPU faults and migration are off, or `nil` when the mirror runs.
    public let mirrorUnavailableReason: String?
    /// How long one device fault may keep retrying before it fails with `EAGAIN` (10 s by
    /// default). Atomic: set by any thread, read by each fault when it starts.
    public var faultTimeout: Duration {
        get { settings.timeout }
        set { settings.timeout = newValue }
    }
    /// How long data a device atomic migrated stays in device memory before a CPU fault
    /// takes it back: 5 ms, as the xe driver gives atomics on discrete GPUs
    /// (`timeslice_ms` in `xe_svm_handle_pagefault`). Atomic, like ``faultTimeout``.
    public var atomicTimeslice: Duration {
        get { settings.atomicTimeslice }
        set { settings.atomicTimeslice = newValue }
    }
    /// What the fault path reads at each fault (see ``FaultSettings``).
    private let settings = FaultSettings()

    let mirror: CPUMirror?
    private let migrator: Migrator?
    /// Reports migrations and handler work that stall (see ``stallReports``).
    private let watchdog: StallWatchdog?
    /// The process that made the context (see ``isForkedCopy``).
    private let processID = svm_process_id()
    private let cpu: ProcessAddressSpace
    private let host: PluginHost?
    /// Devices by id; ids are never reused.
    private let devices = Locked<(nextID: UInt64, byID: AddressTable<SVMDevice>)>((1, AddressTable()))
    /// The paths between the devices opened by plugin name; a leaf lock.
    private let topologyState = Locked(DeviceTopology())

    /// Creates the context and, with a `host`, becomes its device-fault handler. `kernelFaults`
    /// says whether the CPU mirror serves the kernel's own accesses where the process may;
    /// `handlerPlacement`, where its handler thread runs.
    ///
    /// One context per host at a time: the faults the host's plugins report go to the newest
    /// context (and to none once any of them shuts down), and device ids, which plugins see
    /// as `host_device`, are per context, so two live contexts' devices can share one (a
    /// plugin that finds peers by it, as SimDevice does, would mix them up). A second
    /// context that only calls ``handleDeviceFault(hostDevice:address:access:batch:)``
    /// itself on devices without peers, as `bench fault` does, is not affected.
    public init(
        configuration: SVMConfiguration = .standard, policy: MigrationPolicy = .migrateOnDeviceFault, host: PluginHost? = nil,
        kernelFaults: KernelFaults = .whenPermitted, handlerPlacement: HandlerPlacement = .scheduler
    ) {
        cpu = ProcessAddressSpace()
        space = SVMSpace(configuration: configuration, cpu: cpu)
        self.policy = policy
        self.host = host
        do {
            let mirror = try CPUMirror(kernelFaults: kernelFaults, placement: handlerPlacement)
            self.mirror = mirror
            migrator = Migrator(
                space: space, mirror: mirror, statistics: statistics, trace: trace, activity: activity, lost: lostMemory)
            watchdog = StallWatchdog(gate: migrator!.gate, mirror: mirror, statistics: statistics, trace: trace)
            mirrorUnavailableReason = mirror.canMigrate ? nil : "the kernel has no UFFDIO_MOVE (Linux 6.8): CPU faults and invalidation work, nothing migrates to device memory"
        } catch {
            mirror = nil
            migrator = nil
            watchdog = nil
            mirrorUnavailableReason = "userfaultfd unavailable (\(error)): devices use CPU memory in place; nothing migrates and unmaps are not seen"
        }
        faultPath = DeviceFaultPath(
            space: space, mirror: mirror, migrator: migrator, cpu: cpu, statistics: statistics, trace: trace,
            activity: activity, lostMemory: lostMemory, policy: policy, settings: settings)
        mirror?.start(client: self)
        watchdog?.start(limit: { [weak self] in self?.faultTimeout ?? .seconds(10) })
        host?.setDeviceFaultHandler(self)
        if mirror != nil { ContextRegistry.register(self) }
        if mirror?.faults.isUserModeOnly == true { statistics.mirrorUserModeOnly.store(1, ordering: .relaxed) }
    }

    /// What the CPU mirror cannot do here, in plain words, for reports: today, whether the
    /// kernel's own accesses to device-resident memory are served (see ``kernelAccessLimitation``).
    public var limitations: [String] { [kernelAccessLimitation].compactMap { $0 } }

    /// Set when the mirror sees user-mode faults only (`UFFD_USER_MODE_ONLY`, which needs no
    /// privilege): the kernel's own accesses to a page whose data is in device memory are not
    /// served, so `read(2)` into it and `write(2)` from it fail with `EFAULT`, and `mlock`
    /// with `ENOMEM`. Says why: kernel-mode faults were not permitted (the refusals) or not
    /// asked for (``KernelFaults/never``). `nil` without a mirror, or when the mirror serves
    /// kernel-mode faults (``mirrorOpening``).
    public var kernelAccessLimitation: String? {
        guard let mirror, mirror.faults.isUserModeOnly else { return nil }
        let refusals = mirror.faults.kernelFaultRefusals
        let why = refusals.isEmpty
            ? "kernel-mode faults were not asked for"
            : "kernel-mode faults need CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd; refused: "
                + refusals.map(\.description).joined(separator: ", ")
        return "the mirror serves user-mode faults only (\(why)): read(2)/write(2) on device-resident memory fail with EFAULT and mlock with ENOMEM (touch it from the CPU first)"
    }

    /// How the mirror's userfaultfd was opened (`nil` without a mirror): every opening but
    /// ``UserFaultFD/Opening/userModeOnly`` serves the kernel's own accesses too.
    public var mirrorOpening: UserFaultFD.Opening? { mirror?.faults.opening }

    /// Whether this is the copy of a context in the child of a `fork`: its handler thread and
    /// its devices stayed in the parent. The child's memory is whole (device-resident data
    /// came home before the fork, see `ForkPreparation.swift`), but it may not use devices:
    /// device faults there fail with `ENODEV`, and ``shutdown()`` does nothing.
    public var isForkedCopy: Bool { svm_process_id() != processID }

    /// Moves every device's data back to system memory and stops the mirror. Call before
    /// the memory devices used is read by the CPU for the last time, or let it run at exit.
    public func shutdown() {
        guard !isForkedCopy else { return }
        for device in allDevices { release(device) }
        host?.setDeviceFaultHandler(nil)
        watchdog?.stop()
        mirror?.stop()
    }

    deinit {
        guard !isForkedCopy else { return }
        watchdog?.stop()
        mirror?.stop()
    }

    /// Migrations and handler work that made no progress for the fault timeout, in the order
    /// the watchdog saw them (see `StallWatchdog.swift`). The device faults waiting for them
    /// fail with `EAGAIN` at their own timeout.
    public var stallReports: [StallReport] { watchdog?.reports ?? [] }

    /// Fault injection for tests: `stall` runs inside every migration to device memory once
    /// it owns its range (`nil` removes it).
    @_spi(Testing) public func injectMigrationStall(_ stall: (@Sendable (AddressInterval) -> Void)?) {
        migrator?.injection.stall.current = stall
    }

    /// Fault injection for tests: `stall` runs inside every migration back to system memory
    /// once it owns its range, on whichever thread migrates (the handler's, for a CPU fault).
    /// Whether the CPU mirror's handler is serving a fault or an event now.
    @_spi(Testing) public var mirrorHandlerIsBusy: Bool { mirror?.handlerWork != nil }

    @_spi(Testing) public func injectHomeMigrationStall(_ stall: (@Sendable (AddressInterval) -> Void)?) {
        migrator?.injection.stallHome.current = stall
    }

    // MARK: fork (ForkPreparation)

    /// Run by the forking thread before the address space is copied: closes the way into
    /// device memory and brings every device-resident range home, then waits until no
    /// migration is under way. ``resumeAfterFork()`` opens the way again.
    func prepareForFork() {
        guard let migrator, !isForkedCopy else { return }
        migrator.gate.close()
        statistics.forksPrepared.count()
        // Bounded: a range that keeps coming back would be a bug, not a reason to hang fork.
        for _ in 0..<Self.forkPreparationPasses {
            var resident = false
            for device in allDevices {
                for range in device.pagemap.residents.ranges {
                    guard case .device = range.residency.current else { continue }
                    resident = true
                    migrator.migrateToSystem(range, cause: .fork) { statistics.forkMigrations.count() }
                }
            }
            migrator.gate.waitUntilNoneInFlight()
            if !resident { break }
        }
        trace.record("fork: device data home", AddressInterval(start: 0, end: .max))
    }

    /// How many times ``prepareForFork()`` looks for device-resident data: the first pass
    /// brings it home, the second finds none (migrations to device wait at the gate).
    private static let forkPreparationPasses = 8

    // MARK: protection changes (ProtectionWatch)

    /// Called around an `mprotect` of `[start, start + length)` by the framework's wrapper:
    /// before it (`ending` false) invalidates device mappings of the SVM ranges there; after
    /// it, lets device faults bind again.
    func protectionChanging(start: UInt64, length: UInt64, ending: Bool) {
        guard let mirror, !isForkedCopy else { return }
        guard !ending else {
            mirror.protection.end()
            return
        }
        mirror.protection.begin()
        let (end, overflow) = start.addingReportingOverflow(length)
        guard length > 0, !overflow else { return }
        let interval = AddressInterval(start: start & ~4095, end: (min(end, UInt64.max - 4095) + 4095) & ~4095)
        if !space.invalidate(interval, event: .protectionChange).isEmpty {
            statistics.protectionInvalidations.count()
        }
    }

    /// The parent side of ``prepareForFork()``.
    func resumeAfterFork() {
        guard let migrator, !isForkedCopy else { return }
        migrator.gate.open()
    }

    // MARK: devices

    /// Opens device `index` of the plugin `pluginName` loaded in the host.
    public func openDevice(plugin pluginName: String, index: Int = 0) throws -> SVMDevice {
        guard let host else { throw SVMContextError.noPluginHost }
        guard let plugin = host.plugin(named: pluginName) else { throw SVMContextError.noSuchPlugin(pluginName) }
        guard let driver = plugin.device else { throw SVMContextError.notADevicePlugin(pluginName) }
        let id = reserveDeviceID()
        let open = try driver.openDevice(at: index, hostDevice: id)
        let info = try? driver.deviceInfo(at: index)
        let device = adopt(open, id: id, name: info?.name ?? "\(pluginName)[\(index)]")
        if let info { join(device, info: info, interconnects: host.plugins.compactMap { plugin in plugin.interconnect.map { (plugin.name, $0) } }) }
        return device
    }

    /// Adds `device` to the topology: asks the interconnects for its paths to and from the
    /// devices open before, and tells the pagemaps of both ends.
    private func join(_ device: SVMDevice, info: DeviceInfo, interconnects: [(name: String, interconnect: any Interconnect)]) {
        let failures = topologyState.withLock { topology in
            topology.add(DeviceTopology.Device(id: device.deviceID, info: info), interconnects: interconnects)
        }
        topologyFailures.withLock { $0 += failures }
        let topology = self.topology
        for other in allDevices where other !== device {
            device.pagemap.setPeerPath(topology.path(from: device.deviceID, to: other.deviceID), to: other.deviceID)
            other.pagemap.setPeerPath(topology.path(from: other.deviceID, to: device.deviceID), to: device.deviceID)
        }
    }

    /// What interconnect plugins failed to answer about paths (each pair then has none).
    public var topologyProblems: [String] { topologyFailures.withLock { $0 } }
    private let topologyFailures = Locked<[String]>([])

    /// Which open devices reach each other's memory directly (see ``DeviceTopology``).
    public var topology: DeviceTopology { topologyState.withLock { $0 } }

    /// Uses an already open device (a plugin's device opened with `hostDevice` = `id`
    /// from ``reserveDeviceID()``).
    public func adopt(_ device: any OpenDevice, id: UInt64, name: String) -> SVMDevice {
        let svmDevice = SVMDevice(
            deviceID: id, name: name, device: device, hostMemory: registerHostMemory, statistics: statistics,
            addressSpaceSettled: { [mirror, weak self] in
                // Bounded: a stuck handler (which the watchdog reports) must not hang launches.
                mirror?.waitUntilEventsHandled(deadline: .now + (self?.faultTimeout ?? .seconds(10)))
            })
        devices.withLock { $0.byID[id] = svmDevice }
        space.register(svmDevice)
        return svmDevice
    }

    /// Checks the host memory a pagemap declares and registers it with the mirror, for
    /// zero-copy migration (see ``SVMPagemap``).
    private func registerHostMemory(_ info: PagemapInfo) -> Result<AddressInterval, SVMPagemap.HostMemoryRefusal> {
        guard let mirror, mirror.canMigrate else { return .failure(.init("nothing migrates: \(mirrorUnavailableReason ?? "no mirror")")) }
        let checked = SVMPagemap.checkHostMemory(info, cpu: cpu)
        guard case .success(let interval) = checked else { return checked }
        do {
            try mirror.registerForMoves(interval)
        } catch {
            return .failure(.init("the mirror cannot register host memory: \(error)"))
        }
        return checked
    }

    /// A fresh device id, for ``adopt(_:id:name:)``.
    public func reserveDeviceID() -> UInt64 {
        devices.withLock { state in defer { state.nextID += 1 }; return state.nextID }
    }

    /// Moves every range resident in `device`'s memory back to system memory (the
    /// device releases its memory, as `dmirror`'s release does).
    public func release(_ device: SVMDevice) {
        guard let migrator else { return }
        for range in device.pagemap.residents.ranges { migrator.migrateToSystem(range) }
    }

    /// Migrates what device memory holds of `interval` back to system memory, range by
    /// range in address order, as the CPU's faults on it would (the same migration, cause
    /// and counter): data whose copy back fails is lost, and in ``lostMemory``, before
    /// anyone reads it (a CPU read of it would raise `SIGBUS`).
    func migrateToSystemForCPU(_ interval: AddressInterval) {
        guard let migrator else { return }
        let ranges = allDevices.flatMap(\.pagemap.residents.ranges).filter { $0.interval.overlaps(interval) }
        for range in ranges.sorted(by: { $0.interval.start < $1.interval.start }) {
            migrator.migrateToSystem(range, cause: .cpuFault) { statistics.cpuFaultMigrations.count() }
        }
    }

    /// Releases the device's memory, removes its mappings and closes it.
    public func close(_ device: SVMDevice) {
        release(device)
        space.unregister(deviceID: device.deviceID)
        _ = devices.withLock { $0.byID.removeValue(forKey: device.deviceID) }
        topologyState.withLock { $0.remove(device.deviceID) }
        for other in allDevices { other.pagemap.setPeerPath(nil, to: device.deviceID) }
        // The fault handler may still be using the device (an unmap it is handling): wait
        // for that, and make later calls no-ops, before the plugin closes it.
        device.markClosed()
        // The plugin unmaps its memory on close: no event for the mirror to wait on.
        if let hostMemory = device.pagemap.hostMemory {
            try? mirror?.faults.unregister(UInt(hostMemory.start), length: Int(hostMemory.size))
        }
        device.device.close()
    }

    var allDevices: [SVMDevice] { devices.withLock { Array($0.byID.values) } }

    // MARK: device faults (DeviceFaultHandler)

    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
        try handleDeviceFault(hostDevice: hostDevice, address: address, access: access, batch: 0)
    }

    /// Prefetches `interval` for `device` (the xe driver's prefetch bind to a memory
    /// region): every range of it migrates into `owner`'s memory — by default the device's
    /// own, or a peer's it has a path to — and is bound on `device` there, locally or over
    /// the peer path, so that the device's next accesses to it fault no more. Memory that
    /// cannot migrate (shared, or not watched by the mirror) is bound in place.
    /// - Throws: `PluginErrno.noLink` (`-ENOLINK`) when `owner` is another device without a
    ///   peer path, before anything moves; else what a device fault on the range would get
    ///   (`.badAddress` where nothing is mapped, …), the ranges before it prefetched.
    public func prefetch(_ interval: AddressInterval, for device: SVMDevice, into owner: SVMDevice? = nil) throws {
        guard !isForkedCopy else { throw PluginErrno.noDevice }
        guard !device.isOutOfService else { throw PluginErrno.ioError }
        let pagemap = (owner ?? device).pagemap
        var cursor = interval.start
        while cursor < interval.end {
            try faultPath.prefetch(device: device, address: cursor, into: pagemap)
            guard let range = space.range(containing: cursor) else { break }
            cursor = range.interval.end
        }
    }

    /// The device fault path, made once: it reads the settings at each fault.
    let faultPath: DeviceFaultPath

    /// Contention injection for tests (see ``FaultSettings/contention``).
    var contentionInjection: (@Sendable (SVMDevice, SVMRange) -> Void)? {
        get { settings.contention.current }
        set { settings.contention.current = newValue }
    }

    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws {
        guard !isForkedCopy else { throw PluginErrno.noDevice }
        statistics.deviceFaults.count()
        activity.record(.deviceFault(deviceID: hostDevice, address: address, access: access, batch: batch))
        guard let device = devices.withLock({ $0.byID[hostDevice] }) else { throw PluginErrno.noDevice }
        // Its translations can no longer be trusted (see SVMDevice.zap): map nothing more.
        guard !device.isOutOfService else { throw PluginErrno.ioError }
        device.thrashing.begin(kernel: device.kernelNumber, batch: batch)
        do {
            try faultPath.service(device: device, address: address, access: access)
        } catch {
            statistics.failedDeviceFaults.count()
            throw error
        }
    }

    /// The device lost its memory's contents: every range resident there loses its data
    /// (device memory freed, mappings invalidated, CPU pages poisoned and listed in
    /// ``lostMemory``). A migration back under way finds its copy failing and loses the data
    /// itself.
    public func handleDeviceReset(hostDevice: UInt64) throws {
        guard let device = devices.withLock({ $0.byID[hostDevice] }) else { throw PluginErrno.noDevice }
        if let hook = resetInjection.current { hook(hostDevice) }
        statistics.deviceResets.count()
        activity.record(.deviceReset(deviceID: hostDevice))
        defer { device.pagemap.resetting.store(false, ordering: .releasing) }
        guard let migrator else { return }
        for range in device.pagemap.residents.ranges { migrator.lose(range) }
    }

    /// The device is about to wipe its memory (ABI 1.7): from now on no device maps it (the
    /// fault path refuses data held there, and commits check again under the notifier lock),
    /// and every mapping of what it holds is zapped, its peers' included, before the plugin
    /// wipes anything. ``handleDeviceReset(hostDevice:)`` then loses the data and lifts this.
    public func handleDeviceResetBegin(hostDevice: UInt64) throws {
        guard let device = devices.withLock({ $0.byID[hostDevice] }) else { throw PluginErrno.noDevice }
        // The flag first: a commit that reads the sequence after the zap below sees it.
        device.pagemap.resetting.store(true, ordering: .releasing)
        for range in device.pagemap.residents.ranges { space.invalidateForMigration(range.interval) }
    }

    /// Fault injection for tests: runs at the start of ``handleDeviceReset(hostDevice:)``,
    /// after the plugin wiped its memory and before the host loses the data.
    let resetInjection = TestHook<@Sendable (UInt64) -> Void>()

    // MARK: CPU mirror client (handler thread)

    func serviceCPUFault(address: UInt64, write: Bool) -> CPUFaultDisposition {
        guard let mirror else { return .resolved }
        enum Step { case done, deferred, migrateBack(SVMRange), retry }
        while true {
            // Zero-fill only while no migration can move the page's data away: under the
            // range's state, or, outside any range, while no range can be made.
            let step: Step = space.withRange(containing: address) { range in
                guard let range else { return zeroFill(address, mirror: mirror) }
                switch range.residency.current {
                case .migrating:
                    trace.record("CPU fault: deferred, a migration owns the range", AddressInterval(start: address, end: address + 4096))
                    return .deferred
                case .device(let allocation):
                    // A device atomic's timeslice: let the device use the data first.
                    return allocation.isHeld ? .deferred : .migrateBack(range)
                case .system:
                    var result = Step.retry
                    _ = range.residency.whileInSystemMemory { result = zeroFill(address, mirror: mirror) }
                    return result
                }
            }
            switch step {
            case .done: return .resolved
            case .deferred: return .deferred
            case .migrateBack(let range):
                let migrated = migrator?.migrateToSystem(range, cause: .cpuFault) { statistics.cpuFaultMigrations.count() }
                return migrated == true ? .resolved : .deferred
            case .retry:
                // Tried again after the next event is handled, not in a loop here: the
                // kernel refuses the fill while any change waits for its event to be read,
                // until the changing thread has woken from that wait.
                guard mirror.letMappingChangeProceed(deferrable: true) else { return .deferred }
            }
        }

        /// Fills a missing page with zeros: never touched, or discarded.
        func zeroFill(_ address: UInt64, mirror: CPUMirror) -> Step {
            let outcome = try? mirror.faults.zeroPage(UInt(address), length: 4096)
            trace.record("CPU fault: zero page \(String(describing: outcome))", AddressInterval(start: address, end: address + 4096))
            switch outcome {
            case .completed:
                statistics.cpuZeroFills.count()
                return .done
            case .mappingChanging:
                return .retry
            default:
                // Already present (filled meanwhile) or gone: wake the thread to retry.
                try? mirror.faults.wake(UInt(address), length: 4096)
                return .done
            }
        }
    }

    func addressSpaceChanged(_ event: UserFaultFDEvent) {
        trace.record("event \(event)", AddressInterval(start: 0, end: .max))
        switch event {
        case .unmap(let start, let end), .remove(let start, let end):
            let interval = AddressInterval(start: UInt64(start), end: UInt64(end))
            let isUnmap = if case .unmap = event { true } else { false }
            if !isUnmap { migrator?.discardCPUPages(interval) }
            // The program gave the memory up: what it maps there next is new.
            lostMemory.remove(interval)
            for range in space.invalidate(interval, event: isUnmap ? .unmap : .remove) {
                settleDeviceData(range, change: .discarded(interval))
            }
        case .remap(let from, let to, let length):
            let old = AddressInterval(start: UInt64(from), end: UInt64(from + length))
            lostMemory.remap(from: UInt64(from), to: UInt64(to), length: UInt64(length))
            // The ranges at the old addresses end; their data follows the pages.
            for range in space.invalidate(old, event: .unmap) {
                settleDeviceData(range, change: .remapped(from: UInt64(from), to: UInt64(to), length: UInt64(length)))
            }
        case .pagefault, .fork:
            break
        }
    }

    /// Settles a device-resident range after an address-space change touched it: device
    /// data whose pages are all gone is dropped; otherwise the data goes back to the CPU
    /// pages that still hold it (a partial unmap destroys the whole range, and what is still
    /// mapped refaults). A migration in flight applies the change itself, from the log.
    private func settleDeviceData(_ range: SVMRange, change: AddressSpaceChange) {
        guard let migrator, case .device = range.residency.current else { return }
        if case .discarded(let interval) = change, interval.contains(range.interval) {
            migrator.discard(range)
        } else {
            migrator.migrateToSystem(range, cause: .addressSpaceChange)
        }
    }
}

/// Where a device fault puts data.
public enum MigrationPolicy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Migrate the range to the faulting device's memory when possible (xe's default for
    /// the system allocator with device memory).
    case migrateOnDeviceFault = "migrate"
    /// Map the CPU pages in place; only device atomics migrate.
    case systemMemory = "system"
    /// As ``migrateOnDeviceFault``, except that data already in a peer's memory, which the
    /// faulting device reaches over a peer path, is accessed there in place (peer mapping)
    /// instead of migrated; device atomics still migrate.
    case accessPeerInPlace = "peer"
}

/// A request the context cannot serve.
public enum SVMContextError: Error, Hashable, CustomStringConvertible {
    case noPluginHost
    case noSuchPlugin(String)
    case notADevicePlugin(String)

    public var description: String {
        switch self {
        case .noPluginHost: "the SVM context was made without a plugin host, so it cannot open devices"
        case .noSuchPlugin(let name): "no plugin named '\(name)' is loaded"
        case .notADevicePlugin(let name): "plugin '\(name)' is not a device plugin"
        }
    }
}
