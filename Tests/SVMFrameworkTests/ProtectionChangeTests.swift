import CSVMInterpose
import Glibc
@testable import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// `mprotect` after a device mapped the memory (the kernel's HMM `anon_write_prot`,
/// `anon_read_prot` and `exclusive_mprotect`): the change invalidates the device's mappings
/// before it takes effect, and later device accesses obey it, writing nothing.
@Suite struct ProtectionChangeTests {
    static let size = 2 << 20

    /// Data migrated to device memory, made read-only: a device write is refused and changes
    /// nothing; reads still work; made writable again, the write works.
    @Test(arguments: [MigrationPath.zeroCopy, .copy])
    func readOnlyAfterMigrationRefusesDeviceWrites(path: MigrationPath) throws {
        let f = try SimDeviceFixture(options: path.options)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.size)
        buffer.fill(seed: 31)
        // A device write migrates the range and binds it writable.
        #expect(try f.deviceWrite(buffer.address, [7, 7, 7, 7]).stoppedBy == nil)
        #expect(f.count("migrationsToDevice") == 1)
        #expect(mprotect(buffer.base, buffer.size, PROT_READ) == 0)
        #expect(f.count("protectionInvalidations") == 1)
        let refused = try f.deviceWrite(buffer.address + 8192, [UInt8](repeating: 9, count: 4096))
        #expect(refused.stoppedBy == .accessDenied)
        let (bytes, read) = try f.deviceRead(buffer.address, buffer.size)
        #expect(read.stoppedBy == nil)
        #expect(Array(bytes[0..<4]) == [7, 7, 7, 7])
        #expect((4..<buffer.size).allSatisfy { bytes[$0] == MappedBuffer.pattern($0, seed: 31) }, "nothing written")
        // The CPU reads it back (into read-only memory, copied).
        #expect(buffer.bytes[0] == 7 && buffer.mismatches(seed: 31, 4..<buffer.size) == 0)
        #expect(mprotect(buffer.base, buffer.size, PROT_READ | PROT_WRITE) == 0)
        #expect(try f.deviceWrite(buffer.address + 8192, [9]).stoppedBy == nil)
        #expect(buffer.bytes[8192] == 9)
    }

    /// A range the mirror watches keeps the CPU mapping its lookup found: later device faults
    /// there ask the kernel for none (no `PROCMAP_QUERY`), until a protection change or an
    /// unmap reaches the space, after which the next fault asks again and obeys the new
    /// mapping.
    @Test func mirroredRangesKeepTheirMappingUntilItChanges() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let cpu = try #require(f.context.space.cpu as? ProcessAddressSpace)
        let buffer = MappedBuffer(size: Self.size)
        buffer.fill(seed: 5)
        func queries(_ body: () throws -> Void) rethrows -> Int {
            let before = cpu.areaQueries.load(ordering: .relaxed)
            try body()
            return cpu.areaQueries.load(ordering: .relaxed) - before
        }
        // The first faults make and mirror the range and cache its mapping.
        _ = try f.deviceRead(buffer.address, 64)
        #expect(buffer.mismatches(seed: 5) == 0)  // home again
        _ = try f.deviceRead(buffer.address, 64)
        #expect(buffer.mismatches(seed: 5) == 0)
        // Tests running alongside may change protections (the count is the process's),
        // which makes a lookup ask again: one of a few faults must ask nothing.
        var asked: [Int] = []
        for _ in 0..<5 where asked.last != 0 {
            asked.append(try queries {
                let (bytes, read) = try f.deviceRead(buffer.address, 64)
                #expect(read.faults > 0 && MappedBuffer.holdsPattern(bytes, seed: 5))
            })
            #expect(buffer.mismatches(seed: 5) == 0)  // home again for the next fault
        }
        #expect(asked.last == 0, "faults on a mirrored range asked the kernel \(asked) times")
        // A protection change: the next fault asks again, and a write is refused.
        #expect(mprotect(buffer.base, buffer.size, PROT_READ) == 0)
        let refused = try queries {
            let write = try f.deviceWrite(buffer.address, [1])
            #expect(write.stoppedBy == .accessDenied)
        }
        #expect(refused > 0)
        #expect(mprotect(buffer.base, buffer.size, PROT_READ | PROT_WRITE) == 0)
        #expect(try f.deviceWrite(buffer.address, [1]).stoppedBy == nil)
        // An unmap, then shared memory at the same address: not the cached private mapping.
        buffer.unmapKeepingAddresses(pages: 0..<(Self.size / MappedBuffer.pageSize))
        let shared = mmap(buffer.base, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        #expect(shared == buffer.base)
        memset(buffer.base, 3, Self.size)
        let (bytes, read) = try f.deviceRead(buffer.address, 64)
        #expect(read.stoppedBy == nil && bytes.allSatisfy { $0 == 3 })
        #expect(f.device(holding: buffer.address) == nil, "shared memory is used in place, never migrated")
    }

    /// The fault that makes a range asks the kernel for its mapping once (the allocator-heap
    /// check of a new range uses the area that lookup found, not a second `PROCMAP_QUERY`)
    /// and keeps the mapping: the range's second fault asks nothing (the benchmark's case:
    /// every range is faulted twice).
    @Test func aRangeAsksTheKernelOnceForItsFirstFaultAndNotForItsSecond() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let cpu = try #require(f.context.space.cpu as? ProcessAddressSpace)
        func queries(_ body: () throws -> Void) rethrows -> Int {
            let before = cpu.areaQueries.load(ordering: .relaxed)
            try body()
            return cpu.areaQueries.load(ordering: .relaxed) - before
        }
        // Tests running alongside may change protections (the count is the process's),
        // which makes a lookup ask again: one of a few fresh ranges must ask as expected.
        var asked: [[Int]] = []
        for attempt in 0..<5 where asked.last != [1, 0] {
            let seed = UInt8(attempt)
            let buffer = MappedBuffer(size: Self.size)
            buffer.fill(seed: seed)
            asked.append(try [0, 1].map { _ in
                let count = try queries {
                    let (bytes, read) = try f.deviceRead(buffer.address, 64)
                    #expect(read.faults > 0 && MappedBuffer.holdsPattern(bytes, seed: seed))
                }
                #expect(buffer.mismatches(seed: seed) == 0)  // home again, for the next fault
                return count
            })
        }
        #expect(asked.last == [1, 0], "first and second faults of fresh ranges asked the kernel \(asked) times")
    }

    /// PROT_NONE after migration: a device read fails and reads nothing; PROT_READ again,
    /// it reads the data.
    @Test(arguments: [MigrationPath.zeroCopy, .copy])
    func noAccessAfterMigrationRefusesDeviceReads(path: MigrationPath) throws {
        let f = try SimDeviceFixture(options: path.options)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.size)
        buffer.fill(seed: 32)
        _ = try f.deviceRead(buffer.address, 64)
        #expect(f.device.usedDeviceMemory > 0)
        #expect(mprotect(buffer.base, buffer.size, PROT_NONE) == 0)
        var untouched = [UInt8](repeating: 0xAB, count: 4096)
        let result = try untouched.withUnsafeMutableBytes { host in
            try f.device.run(.read(source: buffer.address, size: 4096, hostBuffer: UInt64(UInt(bitPattern: host.baseAddress!))))
        }
        #expect(result.stoppedBy != nil, "a device read of PROT_NONE memory fails")
        #expect(untouched.allSatisfy { $0 == 0xAB }, "and reads nothing")
        #expect(mprotect(buffer.base, buffer.size, PROT_READ) == 0)
        let (bytes, read) = try f.deviceRead(buffer.address, buffer.size)
        #expect(read.stoppedBy == nil && MappedBuffer.holdsPattern(bytes, seed: 32))
        #expect(mprotect(buffer.base, buffer.size, PROT_READ | PROT_WRITE) == 0)
        #expect(buffer.mismatches(seed: 32) == 0)
    }

    /// The CPU pages mapped in place (no migration), the protection changed from another
    /// thread, with `pkey_mprotect`: the device's writable binding goes.
    @Test func inPlaceBindingObeysAChangeFromAnotherThread() throws {
        let f = try SimDeviceFixture(policy: .systemMemory)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.size)
        buffer.fill(seed: 33)
        #expect(try f.deviceWrite(buffer.address, [1]).stoppedBy == nil)
        let changer = TestThread { precondition(pkey_mprotect(buffer.base, buffer.size, PROT_READ, -1) == 0) }
        changer.join()
        #expect(try f.deviceWrite(buffer.address + 1, [2]).stoppedBy == .accessDenied)
        #expect(buffer.bytes[0] == 1 && buffer.mismatches(seed: 33, 1..<buffer.size) == 0)
        #expect(mprotect(buffer.base, buffer.size, PROT_READ | PROT_WRITE) == 0)
    }

    /// Not covered, and shown so: a raw `mprotect` system call is not seen, and a device
    /// keeps its writable mapping of device memory until something else invalidates it.
    /// (A mapping of CPU pages in place obeys anyway: SimDevice reaches them through the
    /// kernel, which checks the protection.)
    @Test func rawSystemCallIsNotSeen() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: Self.size)
        #expect(try f.deviceWrite(buffer.address, [1]).stoppedBy == nil)
        #expect(f.device.usedDeviceMemory > 0)
        #expect(svm_mprotect_unwatched(buffer.base, buffer.size, PROT_READ) == 0)
        #expect(f.count("protectionInvalidations") == 0)
        #expect(try f.deviceWrite(buffer.address + 1, [2]).stoppedBy == nil, "the old writable mapping is still used")
        #expect(buffer.bytes[1] == 2)
        #expect(mprotect(buffer.base, buffer.size, PROT_READ | PROT_WRITE) == 0)
    }
}
