import CSVMPlatform
import Glibc
import SVMPluginKit
import Synchronization

/// The framework's system allocator (what the xe driver builds on `drm_gpusvm`): one SVM
/// space mirroring this process's address space with userfaultfd, the devices that use it
/// through their plugins, and the migrations between system and device memory.
///
/// A device faults on any CPU address; the context finds or makes the range, migrates it
/// to the device's memory when it can (else maps the CPU pages in place), and binds it in
/// the device's page table under the notifier lock if no invalidation intervened. A CPU
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
    /// How long one device fault may keep retrying before it fails with `EAGAIN`.
    public var faultTimeout: Duration = .seconds(10)
    /// How long data a device atomic migrated stays in device memory before a CPU fault
    /// takes it back: 5 ms, as the xe driver gives atomics on discrete GPUs
    /// (`timeslice_ms` in `xe_svm_handle_pagefault`).
    public var atomicTimeslice: Duration = .milliseconds(5)

    let mirror: CPUMirror?
    private let migrator: Migrator?
    private let cpu: ProcessAddressSpace
    private let host: PluginHost?
    /// Devices by id; ids are never reused.
    private let devices = Mutex<(nextID: UInt64, byID: [UInt64: SVMDevice])>((1, [:]))

    /// Creates the context and, with a `host`, becomes its device-fault handler.
    public init(configuration: SVMConfiguration = .standard, policy: MigrationPolicy = .migrateOnDeviceFault, host: PluginHost? = nil) {
        cpu = ProcessAddressSpace()
        space = SVMSpace(configuration: configuration, cpu: cpu)
        self.policy = policy
        self.host = host
        do {
            let mirror = try CPUMirror()
            self.mirror = mirror
            migrator = Migrator(
                space: space, mirror: mirror, statistics: statistics, trace: trace, activity: activity, lost: lostMemory)
            mirrorUnavailableReason = mirror.canMigrate ? nil : "the kernel has no UFFDIO_MOVE (Linux 6.8): CPU faults and invalidation work, nothing migrates to device memory"
        } catch {
            mirror = nil
            migrator = nil
            mirrorUnavailableReason = "userfaultfd unavailable (\(error)): devices use CPU memory in place; nothing migrates and unmaps are not seen"
        }
        mirror?.start(client: self)
        host?.setDeviceFaultHandler(self)
    }

    /// Moves every device's data back to system memory and stops the mirror. Call before
    /// the memory devices used is read by the CPU for the last time, or let it run at exit.
    public func shutdown() {
        for device in allDevices { release(device) }
        host?.setDeviceFaultHandler(nil)
        mirror?.stop()
    }

    deinit { mirror?.stop() }

    // MARK: devices

    /// Opens device `index` of the plugin `pluginName` loaded in the host.
    public func openDevice(plugin pluginName: String, index: Int = 0) throws -> SVMDevice {
        guard let host else { throw SVMContextError.noPluginHost }
        guard let plugin = host.plugin(named: pluginName) else { throw SVMContextError.noSuchPlugin(pluginName) }
        guard let driver = plugin.device else { throw SVMContextError.notADevicePlugin(pluginName) }
        let id = reserveDeviceID()
        let open = try driver.openDevice(at: index, hostDevice: id)
        let name = (try? driver.deviceInfo(at: index).name) ?? "\(pluginName)[\(index)]"
        return adopt(open, id: id, name: name)
    }

    /// Uses an already open device (a plugin's device opened with `hostDevice` = `id`
    /// from ``reserveDeviceID()``).
    public func adopt(_ device: any OpenDevice, id: UInt64, name: String) -> SVMDevice {
        let svmDevice = SVMDevice(deviceID: id, name: name, device: device) { [mirror] in mirror?.waitUntilEventsHandled() }
        devices.withLock { $0.byID[id] = svmDevice }
        space.register(svmDevice)
        return svmDevice
    }

    /// A fresh device id, for ``adopt(_:id:name:)``.
    public func reserveDeviceID() -> UInt64 {
        devices.withLock { state in defer { state.nextID += 1 }; return state.nextID }
    }

    /// Moves every range resident in `device`'s memory back to system memory (the
    /// device releases its memory, as `dmirror`'s release does).
    public func release(_ device: SVMDevice) {
        guard let migrator else { return }
        for range in device.residents.ranges { migrator.migrateToSystem(range, devices: allDevices) }
    }

    /// Releases the device's memory, removes its mappings and closes it.
    public func close(_ device: SVMDevice) {
        release(device)
        space.unregister(deviceID: device.deviceID)
        _ = devices.withLock { $0.byID.removeValue(forKey: device.deviceID) }
        // The fault handler may still be using the device (an unmap it is handling): wait
        // for that, and make later calls no-ops, before the plugin closes it.
        device.markClosed()
        device.device.close()
    }

    var allDevices: [SVMDevice] { devices.withLock { Array($0.byID.values) } }

    // MARK: device faults (DeviceFaultHandler)

    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
        try handleDeviceFault(hostDevice: hostDevice, address: address, access: access, batch: 0)
    }

    public func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws {
        statistics.deviceFaults.count()
        activity.record(.deviceFault(deviceID: hostDevice, address: address, access: access, batch: batch))
        guard let device = devices.withLock({ $0.byID[hostDevice] }) else { throw PluginErrno.noDevice }
        device.thrashing.begin(kernel: device.kernelNumber, batch: batch)
        do {
            try serviceDeviceFault(device: device, address: address, access: access)
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
        statistics.deviceResets.count()
        activity.record(.deviceReset(deviceID: hostDevice))
        guard let migrator else { return }
        let devices = allDevices
        for range in device.residents.ranges { migrator.lose(range, devices: devices) }
    }

    /// The GPU fault flow of DESIGN.md: collect garbage, find or insert the range, choose the
    /// placement, migrate, collect the pages, commit under an unchanged sequence number.
    private func serviceDeviceFault(device: SVMDevice, address: UInt64, access: DeviceAccess) throws {
        let writes = access.contains(.write) || access.contains(.atomic)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: faultTimeout)
        // Migrations this fault started; past a few the range ping-pongs with another party
        // and the fault settles for system memory (the xe driver's fallback as well).
        var migrationsTried = 0
        var countedThrashing = false
        while clock.now < deadline {
            mirror?.waitUntilEventsHandled()
            let found: (range: SVMRange, notifier: Notifier, mapping: CPUMapping)
            do {
                found = try space.lookUp(faultAddress: address, write: writes)
            } catch .notMapped {
                throw PluginErrno.badAddress
            } catch .accessDenied {
                throw PluginErrno.accessDenied
            }
            let range = found.range
            // Lost data is never served: not from device memory, not as zeros.
            if lostMemory.overlaps(range.interval) {
                statistics.faultsOnLostData.count()
                throw PluginErrno.ioError
            }
            mirrorIfNeeded(range, mapping: found.mapping)
            let sequence = found.notifier.sequence.readBegin()
            let pieces: [BindPiece]
            var bindAccess: BindAccess = found.mapping.writable ? [.writable] : []
            switch range.residency.current {
            case .migrating:
                usleep(20)  // another party owns the data; it is quick
                continue
            case .device(let allocation) where allocation.deviceID == device.deviceID:
                pieces = Self.pieces(at: allocation.offset, size: allocation.size, protocol: .localVRAM)
                bindAccess.insert(.atomic)
                device.residents.touch(range)
            case .device:
                // In another device's memory, with no peer path yet: bring it home first.
                migrator?.migrateToSystem(range, devices: allDevices, cause: .deviceFault)
                continue
            case .system:
                let atomic = access.contains(.atomic)
                // A range this kernel already had evicted is mapped in place (see ThrashingGuard).
                let thrashes = !atomic && device.thrashing.thrashes(range)
                if thrashes && !countedThrashing {
                    statistics.thrashingAvoided.count()
                    countedThrashing = true
                }
                let wantsDevice = (policy == .migrateOnDeviceFault && !thrashes) || atomic
                if wantsDevice, migrationsTried < 3 || atomic, let migrator, range.flags.load().contains(.migrateDevmem) {
                    migrationsTried += 1
                    let timeslice = atomic ? atomicTimeslice : nil
                    // Device atomics need device memory: they may evict what their batch migrated.
                    if migrator.migrateToDevice(
                        range, device: device, timeslice: timeslice, sparingBatch: !atomic, devices: { self.allDevices })
                    {
                        device.thrashing.migrated(range)
                        continue
                    }
                    // Device atomics need device memory: keep trying (a racing unmap or
                    // discard makes a migration give up), backing off a little.
                    if atomic && device.hasDeviceMemory {
                        if migrationsTried > 3 { usleep(50) }
                        continue
                    }
                }
                // Device atomics need device memory (as on Xe without system atomics).
                if atomic { throw PluginErrno.accessDenied }
                populate(range)
                pieces = Self.pieces(at: range.interval.start, size: range.interval.size, protocol: .system)
            }
            let committed = try space.notifierLock.withReadLock { () throws -> Bool in
                guard !found.notifier.sequence.needsRetry(sequence) else { return false }
                let pages = range.pages(for: device.deviceID)
                try pages.withCommit {
                    if pages.isMapped { device.zap(range.interval) }
                    try device.device.bind(address: range.interval.start, size: range.interval.size, pieces: pieces, access: bindAccess)
                    trace.record("bound on device \(device.deviceID) to \(pieces[0].linkProtocol) \(pieces[0].address) at seq \(sequence)", range.interval)
                    let addresses = pieces.map { PagemapAddress(address: $0.address, linkProtocol: $0.linkProtocol, order: $0.order) }
                    pages.publish(addresses, sequence: sequence, hasDevmem: pieces.first?.linkProtocol == .localVRAM)
                }
                return true
            }
            if committed { return }
        }
        throw PluginErrno.tryAgain
    }

    /// Registers a migratable range with the mirror once; a range the mirror cannot watch
    /// stays in system memory.
    private func mirrorIfNeeded(_ range: SVMRange, mapping: CPUMapping) {
        guard let mirror, mapping.anonymous, !mapping.shared, !range.flags.load().contains(.mirrored) else { return }
        do {
            try mirror.register(range.interval)
            range.flags.insert(.mirrored)
        } catch {
            range.flags.remove(.migrateDevmem)
        }
    }

    /// Makes the CPU pages of a mirrored range present before a device maps them, as
    /// `hmm_range_fault` does: missing pages get the zero page (a device write then makes
    /// its own copy). Never by touching them: the memory may be unmapped at any moment, and
    /// a device must get a fault error then, not crash the process. Memory the mirror does
    /// not watch needs nothing: the kernel faults it in for the device's accesses.
    private func populate(_ range: SVMRange) {
        guard let mirror, range.flags.load().contains(.mirrored) else { return }
        // Under the range's state: a migration must not move data out of a page between the
        // check that it is missing and the zero fill. A changing mapping (EAGAIN) is left to
        // the device's refault.
        _ = range.residency.whileInSystemMemory {
            for run in cpu.missingRuns(range.interval) {
                let outcome = try? mirror.faults.zeroPage(UInt(run.start), length: Int(run.size))
                trace.record("populate: zero pages \(String(describing: outcome))", run)
            }
        }
    }

    /// Pieces of `size` bytes at `address`: one piece when `size` is a page-table size.
    static func pieces(at address: UInt64, size: UInt64, protocol linkProtocol: LinkProtocol) -> [BindPiece] {
        let order = UInt8((size / 4096).trailingZeroBitCount)
        return [BindPiece(address: address, linkProtocol: linkProtocol, order: order)]
    }

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
                case .migrating: return .deferred
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
                let migrated = migrator?.migrateToSystem(range, devices: allDevices, cause: .cpuFault) { statistics.cpuFaultMigrations.count() }
                return migrated == true ? .resolved : .deferred
            case .retry:
                mirror.letMappingChangeProceed()
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
        let devices = allDevices
        switch event {
        case .unmap(let start, let end), .remove(let start, let end):
            let interval = AddressInterval(start: UInt64(start), end: UInt64(end))
            let isUnmap = if case .unmap = event { true } else { false }
            if !isUnmap { migrator?.discardCPUPages(interval) }
            // The program gave the memory up: what it maps there next is new.
            lostMemory.remove(interval)
            for range in space.invalidate(interval, event: isUnmap ? .unmap : .remove) {
                settleDeviceData(range, change: .discarded(interval), devices: devices)
            }
        case .remap(let from, let to, let length):
            let old = AddressInterval(start: UInt64(from), end: UInt64(from + length))
            lostMemory.remap(from: UInt64(from), to: UInt64(to), length: UInt64(length))
            // The ranges at the old addresses end; their data follows the pages.
            for range in space.invalidate(old, event: .unmap) {
                settleDeviceData(range, change: .remapped(from: UInt64(from), to: UInt64(to), length: UInt64(length)), devices: devices)
            }
        case .pagefault, .fork:
            break
        }
    }

    /// Settles a device-resident range after an address-space change touched it: device
    /// data whose pages are all gone is dropped; otherwise the data goes back to the CPU
    /// pages that still hold it (a partial unmap destroys the whole range, and what is still
    /// mapped refaults). A migration in flight applies the change itself, from the log.
    private func settleDeviceData(_ range: SVMRange, change: AddressSpaceChange, devices: [SVMDevice]) {
        guard let migrator, case .device = range.residency.current else { return }
        if case .discarded(let interval) = change, interval.contains(range.interval) {
            migrator.discard(range, devices: devices)
        } else {
            migrator.migrateToSystem(range, devices: devices, cause: .addressSpaceChange)
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
