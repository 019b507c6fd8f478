import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// Zero-copy migration (ABI 1.4 host memory): SimDevice's device memory is host memory of
/// this process, and migrations move its pages with `UFFDIO_MOVE` instead of copying.
@Suite(.serialized) struct ZeroCopyMigrationTests {
    static let chunk = 2 << 20
    static let page = MappedBuffer.pageSize

    /// The page frame behind a virtual page (root sees frame numbers in
    /// `/proc/self/pagemap`; others read 0), or `nil` when the page is not present.
    static func frame(_ address: UInt64) -> UInt64? {
        let descriptor = open("/proc/self/pagemap", O_RDONLY)
        defer { close(descriptor) }
        var entry: UInt64 = 0
        guard pread(descriptor, &entry, 8, off_t(address / UInt64(page) * 8)) == 8, entry & (1 << 63) != 0 else { return nil }
        return entry & ((1 << 55) - 1)
    }

    /// `VmLck` of `/proc/self/status`: the KiB this process has locked.

    /// The host address of the device memory holding `address`'s range.
    static func deviceMemory(of address: UInt64, in f: SimDeviceFixture) -> (allocation: DeviceAllocation, host: UInt64)? {
        guard case .device(let allocation) = f.context.space.range(containing: address)?.residency.current,
            let host = allocation.hostAddress
        else { return nil }
        return (allocation, host)
    }

    @Test("A migration moves the pages: device memory's pages are the program's, nothing is copied")
    func migrationMovesPages() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        #expect(f.device.pagemap.isZeroCopy, "\(f.device.pagemap.zeroCopyUnavailableReason ?? "")")
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 3)
        let frames = (0..<4).map { Self.frame(buffer.page($0 * 100)) }
        let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 3))
        let (allocation, host) = try #require(Self.deviceMemory(of: buffer.address, in: f))
        #expect(allocation.pagemap === f.device.pagemap)
        for (index, frame) in frames.enumerated() where frame != 0 {
            // The very page frames now back device memory (0: not root, frames hidden).
            #expect(Self.frame(host + UInt64(index * 100 * Self.page)) == frame)
        }
        #expect(!f.context.space.cpu.pagesPresent(AddressInterval(start: buffer.address, end: buffer.address + UInt64(Self.chunk))))
        #expect(f.count("bytesMoved") == Self.chunk && f.count("bytesCopied") == 0)
        // And back: the CPU read moves them home.
        #expect(buffer.mismatches(seed: 3) == 0)
        #expect(f.count("bytesMoved") == 2 * Self.chunk && f.count("bytesCopied") == 0)
        for (index, frame) in frames.enumerated() where frame != 0 {
            #expect(Self.frame(buffer.page(index * 100)) == frame)
        }
        #expect(f.count("migrationsToDevice") == 1 && f.count("migrationsToSystem") == 1)
    }

    @Test("Holes stay holes on the device side and read as zeros, filled by the kernel, not the handler")
    func holesReadAsZeros() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        // Pages 0, 7 and 300 hold data; the others were never touched.
        let written = [0, 7, 300]
        for index in written { memset(buffer.base + index * Self.page, 0x5A, Self.page) }
        // Migrated by a fault alone, before any kernel touches device memory: no page is
        // made up for the holes (no zero-page fill, no pagemap read).
        try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address, access: .read)
        let (_, host) = try #require(Self.deviceMemory(of: buffer.address, in: f))
        let block = AddressInterval(start: host, end: host + UInt64(Self.chunk))
        let holes = try #require(PageMap().holes(block))
        #expect(holes.reduce(0) { $0 + $1.size } == UInt64(Self.chunk - written.count * Self.page))
        for index in written { #expect(!holes.contains { $0.contains(host + UInt64(index * Self.page)) }) }
        // The kernel's read finds zeros in the holes: the kernel's own fault maps them. Device
        // memory is registered for moves only; registered for missing faults, each hole
        // would be a userfault the handler fills (a zero fill counted) or waits on.
        let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        for index in 0..<(Self.chunk / Self.page) {
            let expected: UInt8 = written.contains(index) ? 0x5A : 0
            let page = bytes[index * Self.page..<(index + 1) * Self.page]
            #expect(page.allSatisfy { $0 == expected }, "page \(index)")
        }
        #expect(f.count("cpuZeroFills") == 0)
        // And home again: the data, and zeros where it had none.
        for index in 0..<(Self.chunk / Self.page) {
            let expected: UInt8 = written.contains(index) ? 0x5A : 0
            #expect(buffer.base.load(fromByteOffset: index * Self.page, as: UInt8.self) == expected, "page \(index)")
        }
    }

    @Test("A freed and re-allocated block never shows the old bytes", arguments: ["discard", "unmap"])
    func reusedBlockShowsNoOldBytes(how: String) throws {
        let f = try SimDeviceFixture(memory: "2M")
        defer { f.shutdown() }
        var first: MappedBuffer? = MappedBuffer(size: Self.chunk)
        first!.fill(seed: 5)
        _ = try f.deviceRead(first!.address, 16)
        let (old, host) = try #require(Self.deviceMemory(of: first!.address, in: f))
        // The data is dropped while it lives only in device memory.
        if how == "discard" {
            #expect(madvise(first!.base, Self.chunk, MADV_DONTNEED) == 0)
        } else {
            first = nil
        }
        f.context.space.collectGarbage()
        let second = MappedBuffer(size: Self.chunk)
        let (bytes, result) = try f.deviceRead(second.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        let (reused, _) = try #require(Self.deviceMemory(of: second.address, in: f))
        #expect(reused.offset == old.offset, "one 2 MiB block: the same block again")
        #expect(bytes.allSatisfy { $0 == 0 }, "\(bytes.filter { $0 != 0 }.count) old bytes seen")
        #expect(PageMap().holes(AddressInterval(start: host, end: host + UInt64(Self.chunk))) == [])
        withExtendedLifetime(first) {}
    }

    @Test("Pages that cannot move (mlock'ed) fall back, and the data stays intact")
    func unmovablePagesFallBack() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 7)
        guard mlock(buffer.base, Self.chunk) == 0 else { return }  // RLIMIT_MEMLOCK
        defer { munlock(buffer.base, Self.chunk) }
        // ThreadSanitizer's mlock does nothing (it keeps shadow memory unlocked).
        guard lockedMemoryKiB() >= Self.chunk / 1024 else { return }
        let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 7))
        // A locked page moves nowhere (UFFDIO_MOVE refuses it, EINVAL): not to device memory,
        // not to a staging slot. The device uses it in place.
        #expect(f.count("zeroCopyFallbacks") >= 1)
        #expect(f.count("migrationsToDevice") == 0 && f.count("bytesMoved") == 0)
        #expect(f.context.space.range(containing: buffer.address)?.residency.current == .system)
        #expect(f.device.usedDeviceMemory == 0, "the block was given back, emptied")
        #expect(buffer.mismatches(seed: 7) == 0)
        // Device atomics need device memory, which locked pages never reach: refused at once.
        #expect(throws: PluginErrno.accessDenied) {
            try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address, access: .atomic)
        }
        // Unlocked, the next fault migrates it (the device's binding in place needs none).
        munlock(buffer.base, Self.chunk)
        try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address, access: .read)
        #expect(f.count("migrationsToDevice") == 1 && f.count("bytesMoved") == Self.chunk)
        #expect(buffer.mismatches(seed: 7) == 0)
    }

    /// In a process of its own (an exit test): the fork shares every page of the process,
    /// and tests running alongside would see their migrations refused.
    @Test("Pages shared with a forked child cannot move: the fault falls back and the data stays intact")
    func sharedPagesFallBack() async {
        await #expect(processExitsWith: .success) {
            let f = try SimDeviceFixture()
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: ZeroCopyMigrationTests.chunk)
            buffer.fill(seed: 11)
            let child = fork()
            if child == 0 {
                // The child only holds the pages (copy-on-write shared) until killed.
                while true { pause() }
            }
            #expect(child > 0)
            defer {
                kill(child, SIGKILL)
                var status: Int32 = 0
                waitpid(child, &status, 0)
            }
            let (bytes, result) = try f.deviceRead(buffer.address, ZeroCopyMigrationTests.chunk)
            #expect(result.stoppedBy == nil)
            #expect(MappedBuffer.holdsPattern(bytes, seed: 11))
            #expect(f.count("zeroCopyFallbacks") >= 1)
            #expect(buffer.mismatches(seed: 11) == 0)
        }
    }

    @Test("Device to device through system memory (no peer path) is one migration, recorded with source and target")
    func deviceToDeviceIsOneMigration() throws {
        let f = try SimDeviceFixture(devices: 2, interconnect: ["topology": "none"])
        defer { f.shutdown() }
        f.context.activity.enable()
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 13)
        _ = try f.deviceRead(buffer.address, 64, on: f.devices[0])
        let (bytes, _) = try f.deviceRead(buffer.address, Self.chunk, on: f.devices[1])
        #expect(MappedBuffer.holdsPattern(bytes, seed: 13))
        let migrations = f.context.activity.drain().compactMap { entry -> SVMActivityLog.Entry? in
            if case .migration = entry { entry } else { nil }
        }
        let (a, b) = (f.devices[0].deviceID, f.devices[1].deviceID)
        #expect(migrations == [
            .migration(from: .system, to: .device(a), bytes: UInt64(Self.chunk), cause: .deviceFault),
            .migration(from: .device(a), to: .device(b), bytes: UInt64(Self.chunk), cause: .deviceFault),
        ])
        #expect(migrations[1].legs.map(\.deviceID) == [a, b])
        #expect(f.count("migrationsBetweenDevices") == 1 && f.count("migrationsToSystem") == 0)
        #expect(f.count("bytesMoved") == 3 * Self.chunk, "in, out of the first device, into the second")
        #expect(f.devices[0].usedDeviceMemory == 0)
        #expect(buffer.mismatches(seed: 13) == 0)
    }

    @Test("Host memory a plugin declares is checked: memory that is not one private anonymous mapping is refused")
    func declaredHostMemoryIsChecked() throws {
        let cpu = ProcessAddressSpace()
        let buffer = MappedBuffer(size: Self.chunk)
        func check(_ base: UInt64, _ size: UInt64, capacity: UInt64 = 1 << 20) -> String? {
            let info = PagemapInfo(minPageSize: 4096, capacityBytes: capacity, hostBase: base, hostSize: size)
            if case .failure(let refusal) = SVMPagemap.checkHostMemory(info, cpu: cpu) { return refusal.description }
            return nil
        }
        #expect(check(buffer.address, UInt64(Self.chunk)) == nil)
        #expect(check(buffer.address + 1, 4096)?.contains("page-aligned") == true)
        #expect(check(buffer.address, 4096)?.contains("smaller than the capacity") == true)
        #expect(check(buffer.address, UInt64(Self.chunk) * 64, capacity: 4096)?.contains("not one mapping") == true)
        let shared = MappedBuffer(size: Self.chunk, shared: true)
        #expect(check(shared.address, UInt64(Self.chunk))?.contains("private anonymous") == true)
        #expect(check(0x1000, 4096, capacity: 4096)?.contains("nothing is mapped") == true)
    }
}
