import CSVMPlatform
import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// Behaviours of the kernel's HMM selftests (`tools/testing/selftests/mm/hmm-tests.c`, run
/// against the `dmirror` test device), written anew for SimDevice through the plugin ABI.
/// Each checks the data and the fault and migration counts.
@Suite(.serialized) struct HMMSelftestPorts {
    static let chunk = 2 << 20

    /// The CPU writes, the device reads; pages never touched read as zero.
    @Test func anonRead() throws {
        let f = try SimDeviceFixture(policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 1, 0..<Self.chunk / 2)
        let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        #expect(result.faults >= 1)
        #expect(MappedBuffer.holdsPattern(bytes[0..<Self.chunk / 2], seed: 1))
        #expect(bytes[(Self.chunk / 2)...].allSatisfy { $0 == 0 })
        #expect(f.count("migrationsToDevice") == 0)
    }

    /// The device writes, the CPU reads.
    @Test(arguments: [MigrationPolicy.systemMemory, .migrateOnDeviceFault])
    func anonWrite(policy: MigrationPolicy) throws {
        let f = try SimDeviceFixture(policy: policy)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        let pattern = (0..<Self.chunk).map { MappedBuffer.pattern($0, seed: 2) }
        #expect(try f.deviceWrite(buffer.address, pattern).stoppedBy == nil)
        #expect(buffer.mismatches(seed: 2) == 0)
        #expect(f.count("migrationsToDevice") == (policy == .migrateOnDeviceFault ? 1 : 0))
        #expect(f.count("cpuFaultMigrations") == (policy == .migrateOnDeviceFault ? 1 : 0))
    }

    /// Reading PROT_NONE memory is a device fault error; the process carries on.
    @Test func readProtNoneFails() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk, protection: PROT_NONE)
        let (_, result) = try f.deviceRead(buffer.address + 4096, 4096)
        #expect(result.stoppedBy == .accessDenied)
        #expect(result.faultAddress == buffer.address + 4096)
    }

    /// Writing read-only memory is a permission error, and works after mprotect.
    @Test func writeReadOnlyFailsUntilMprotect() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 3)
        mprotect(buffer.base, Self.chunk, PROT_READ)
        let (bytes, read) = try f.deviceRead(buffer.address, 8192)
        #expect(read.stoppedBy == nil)
        #expect(bytes[100] == MappedBuffer.pattern(100, seed: 3))
        let refused = try f.deviceWrite(buffer.address, [UInt8](repeating: 9, count: 4096))
        #expect(refused.stoppedBy == .accessDenied)
        #expect(buffer.mismatches(seed: 3) == 0)
        mprotect(buffer.base, Self.chunk, PROT_READ | PROT_WRITE)
        #expect(try f.deviceWrite(buffer.address, [UInt8](repeating: 9, count: 4096)).stoppedBy == nil)
        #expect(buffer.bytes[4095] == 9 && buffer.bytes[4096] == MappedBuffer.pattern(4096, seed: 3))
    }

    /// Migrate to device memory; the device sees the data there, the CPU gets it back.
    @Test func migrate() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 2 * Self.chunk)
        buffer.fill(seed: 4)
        let (bytes, _) = try f.deviceRead(buffer.address, 2 * Self.chunk)
        #expect(f.count("migrationsToDevice") == 2)
        #expect(f.device.usedDeviceMemory == UInt64(2 * Self.chunk))
        #expect(MappedBuffer.holdsPattern(bytes, seed: 4))
        #expect(buffer.mismatches(seed: 4) == 0)
        #expect(f.count("cpuFaultMigrations") == 2)
        #expect(f.device.usedDeviceMemory == 0)
    }

    /// Migrate, CPU-fault half back, migrate the mix again.
    @Test func migrateFaultHalfThenMigrateAgain() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 4 * Self.chunk)
        buffer.fill(seed: 5)
        _ = try f.deviceRead(buffer.address, 4 * Self.chunk)
        #expect(f.count("migrationsToDevice") == 4)
        #expect(buffer.mismatches(seed: 5, 0..<2 * Self.chunk) == 0)
        #expect(f.count("cpuFaultMigrations") == 2)
        let (bytes, _) = try f.deviceRead(buffer.address, 4 * Self.chunk)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 5))
        #expect(f.count("migrationsToDevice") == 6)
        #expect(buffer.mismatches(seed: 5) == 0)
    }

    /// The device releases its memory: everything goes back to system memory.
    @Test func migrateRelease() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 3 * Self.chunk)
        buffer.fill(seed: 6)
        _ = try f.deviceRead(buffer.address, 3 * Self.chunk)
        #expect(f.device.usedDeviceMemory == UInt64(3 * Self.chunk))
        f.context.release(f.device)
        #expect(f.device.usedDeviceMemory == 0)
        #expect(f.count("migrationsToSystem") == 3)
        #expect(buffer.mismatches(seed: 6) == 0)
        #expect(f.count("cpuFaultMigrations") == 0)
    }

    /// Shared memory is used in place and never migrates.
    @Test func migrateSharedFails() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk, shared: true)
        buffer.fill(seed: 7)
        let (bytes, result) = try f.deviceRead(buffer.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        #expect(bytes[12345] == MappedBuffer.pattern(12345, seed: 7))
        #expect(f.count("migrationsToDevice") == 0)
        #expect(f.device.usedDeviceMemory == 0)
    }

    /// Ten round trips: the device increments in its memory, the CPU checks and writes.
    @Test func tenRoundTrips() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        let words = buffer.base.assumingMemoryBound(to: UInt32.self)
        for i in 0..<Self.chunk / 4 { words[i] = UInt32(i) }
        for trip in 1...10 {
            try f.run(.increment(destination: buffer.address, size: UInt64(Self.chunk), addend: 1))
            #expect((0..<Self.chunk / 4).allSatisfy { words[$0] == UInt32($0) + UInt32(trip) }, "trip \(trip)")
        }
        #expect(f.count("migrationsToDevice") == 10)
        #expect(f.count("cpuFaultMigrations") == 10)
    }

    /// The device reads while another thread unmaps: the device gets the data or a fault
    /// error, never a crash.
    @Test func readWhileAnotherThreadUnmaps() throws {
        let f = try SimDeviceFixture(policy: .systemMemory)
        defer { f.shutdown() }
        for round in 0..<20 {
            let buffer = MappedBuffer(size: Self.chunk)
            buffer.fill(seed: 8)
            let address = buffer.address
            let unmapping = Atomic<Bool>(false)
            let unmapper = TestThread {
                usleep(UInt32(round * 50))
                unmapping.store(true, ordering: .sequentiallyConsistent)
                munmap(buffer.base, Self.chunk)
            }
            var stoppedBy: PluginErrno?
            for _ in 0..<20 {
                let (bytes, result) = try f.deviceRead(address, 64 << 10)
                if let error = result.stoppedBy { stoppedBy = error; break }
                guard bytes[777] == MappedBuffer.pattern(777, seed: 8) else {
                    // Only once the unmap started: a test running alongside may have mapped
                    // new memory at the address since (large mallocs do), which the device
                    // then reads, as it should.
                    let unmapStarted = unmapping.load(ordering: .sequentiallyConsistent)
                    #expect(unmapStarted, "wrong data before the unmap")
                    break
                }
            }
            unmapper.join()
            buffer.forget()
            if stoppedBy == nil {
                let (bytes, result) = try f.deviceRead(address, 4096)
                stoppedBy = result.stoppedBy
                // A test running alongside may have mapped new memory there meanwhile; the
                // device must not see the old data either way.
                if stoppedBy == nil && bytes[777] != MappedBuffer.pattern(777, seed: 8) { continue }
            }
            #expect(stoppedBy == .badAddress)
        }
    }

    /// Two devices read after one migrated: the data moves on and both see it.
    @Test func twoDevicesReadAfterOneMigrated() throws {
        let f = try SimDeviceFixture(devices: 2)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 9)
        let (first, _) = try f.deviceRead(buffer.address, Self.chunk, on: f.devices[0])
        #expect(f.devices[0].usedDeviceMemory == UInt64(Self.chunk))
        let (second, _) = try f.deviceRead(buffer.address, Self.chunk, on: f.devices[1])
        #expect(first == second)
        #expect(MappedBuffer.holdsPattern(second, seed: 9))
        #expect(f.devices[0].usedDeviceMemory == 0 && f.devices[1].usedDeviceMemory == UInt64(Self.chunk))
        // One migration from system memory, then one from device to device (through system
        // memory), recorded once with both ends.
        #expect(f.count("migrationsToDevice") == 1)
        #expect(f.count("migrationsBetweenDevices") == 1 && f.count("bytesBetweenDevices") == Self.chunk)
        #expect(f.count("migrationsToSystem") == 0)
        #expect(buffer.mismatches(seed: 9) == 0)
    }

    /// Device atomics take the range exclusively; a CPU access revokes that, and the next
    /// atomic faults again.
    @Test func exclusiveAccessRevokedByCPU() throws {
        let f = try SimDeviceFixture(policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        let words = buffer.base.assumingMemoryBound(to: UInt32.self)
        let first = try f.run(.increment(destination: buffer.address, size: 4096, addend: 5))
        #expect(first.faults >= 1)
        #expect(f.count("migrationsToDevice") == 1)
        let again = try f.run(.increment(destination: buffer.address, size: 4096, addend: 5))
        #expect(again.faults == 0)
        #expect(words[10] == 10)  // the CPU access revokes the device's exclusive access
        #expect(f.count("cpuFaultMigrations") == 1)
        let third = try f.run(.increment(destination: buffer.address, size: 4096, addend: 1))
        #expect(third.faults >= 1)
        #expect(words[10] == 11 && words[1023] == 11 && words[1024] == 0)
    }

    /// Partial unmap after migration at offsets 0, 1/4 and 1/2.
    @Test(arguments: [0, Self.chunk / 4, Self.chunk / 2])
    func partialUnmapAfterMigration(offset: Int) throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        let pattern = (0..<Self.chunk).map { MappedBuffer.pattern($0, seed: 10) }
        _ = try f.deviceWrite(buffer.address, pattern)
        #expect(f.count("migrationsToDevice") == 1)
        let hole = Self.chunk / 4
        buffer.unmap(offset..<offset + hole)
        #expect(buffer.mismatches(seed: 10, 0..<offset) == 0)
        #expect(buffer.mismatches(seed: 10, (offset + hole)..<Self.chunk) == 0)
        let (goneBytes, gone) = try f.deviceRead(buffer.address + UInt64(offset), 4096)
        // A fault error, unless a test alongside mapped memory there meanwhile; never old data.
        #expect(gone.stoppedBy == .badAddress || goneBytes[1] != MappedBuffer.pattern(offset + 1, seed: 10) || goneBytes[2] != MappedBuffer.pattern(offset + 2, seed: 10))
        let rest = offset == 0 ? hole : 0
        let (bytes, result) = try f.deviceRead(buffer.address + UInt64(rest), 4096)
        #expect(result.stoppedBy == nil)
        #expect(bytes[1] == MappedBuffer.pattern(rest + 1, seed: 10))
    }

    /// mremap before and after migration, with and without MREMAP_DONTUNMAP.
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func mremap(afterMigration: Bool, dontUnmap: Bool) throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.chunk)
        buffer.fill(seed: 11)
        if afterMigration { _ = try f.deviceRead(buffer.address, Self.chunk) }
        let target = MappedBuffer(size: Self.chunk)
        var moved: UnsafeMutableRawPointer?
        let status = dontUnmap
            ? svm_mremap_dontunmap(buffer.base, UInt64(Self.chunk), target.base, &moved)
            : svm_mremap_fixed(buffer.base, UInt64(Self.chunk), UInt64(Self.chunk), target.base, &moved)
        #expect(status == 0)
        let (bytes, result) = try f.deviceRead(target.address, Self.chunk)
        #expect(result.stoppedBy == nil)
        #expect(MappedBuffer.holdsPattern(bytes, seed: 11))
        #expect(target.mismatches(seed: 11) == 0)
        let (old, oldResult) = try f.deviceRead(buffer.address, 4096)
        if dontUnmap {
            #expect(oldResult.stoppedBy == nil && old.allSatisfy { $0 == 0 })
        } else {
            // Unmapped: a fault error, unless a test running alongside has mapped new memory
            // there meanwhile; either way the device must not see the old data.
            let stale = (0..<4096).allSatisfy { old[$0] == MappedBuffer.pattern($0, seed: 11) }
            #expect(oldResult.stoppedBy == .badAddress || !stale)
            buffer.forget()
        }
    }
}
