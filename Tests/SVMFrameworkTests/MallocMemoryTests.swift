import CSVMTestAllocators
import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// Devices on `malloc`'d memory (IGT `xe_exec_system_allocator`'s malloc / free / new
/// loops): small and large blocks, freed and reused, while the framework runs. Each case runs
/// in a process of its own with an alarm, so a deadlock fails the test instead of hanging the
/// suite.
@Suite struct MallocMemoryTests {
    static let sizes = [16, 100, 4096, 5000, 64 << 10, 200 << 10, 1 << 20, 3 << 20]

    @Test(arguments: [MigrationPath.zeroCopy, .copy])
    func mallocFreeLoopsInOneThread(path: MigrationPath) async {
        await #expect(processExitsWith: .success) { [path] in
            alarm(120)
            let f = try SimDeviceFixture(options: path.options)
            defer { f.shutdown() }
            for round in 0..<1000 {
                let size = MallocMemoryTests.sizes[round % MallocMemoryTests.sizes.count]
                let block = malloc(size)!
                let address = UInt64(UInt(bitPattern: block))
                let byte = UInt8(truncatingIfNeeded: round) | 1
                let result = try f.device.run(.fill(destination: address, size: UInt64(size), byte: byte))
                #expect(result.stoppedBy == nil, "round \(round): \(String(describing: result.stoppedBy))")
                let bytes = block.assumingMemoryBound(to: UInt8.self)
                if bytes[0] != byte || bytes[size - 1] != byte {
                    Issue.record("round \(round), size \(size): \(bytes[0]), \(bytes[size - 1]) != \(byte)")
                }
                free(block)
            }
            // Blocks malloc maps for themselves migrate; heap blocks are used in place.
            #expect(f.count("migrationsToDevice") > 0)
        }
    }

    /// calloc, realloc (growing a block the device wrote, which may move it) and C++'s
    /// new[]/delete[], of every size, 1 000 rounds.
    @Test func callocReallocAndNewLoops() async {
        await #expect(processExitsWith: .success) {
            alarm(120)
            let f = try SimDeviceFixture()
            defer { f.shutdown() }
            func deviceFills(_ block: UnsafeMutableRawPointer, from offset: Int, to end: Int, _ byte: UInt8, _ what: String) throws {
                let result = try f.device.run(.fill(destination: UInt64(UInt(bitPattern: block)) + UInt64(offset), size: UInt64(end - offset), byte: byte))
                #expect(result.stoppedBy == nil, "\(what): \(String(describing: result.stoppedBy))")
                let bytes = block.assumingMemoryBound(to: UInt8.self)
                if bytes[offset] != byte || bytes[end - 1] != byte { Issue.record("\(what): \(bytes[offset]), \(bytes[end - 1]) != \(byte)") }
            }
            for round in 0..<1000 {
                let size = MallocMemoryTests.sizes[round % MallocMemoryTests.sizes.count]
                let byte = UInt8(truncatingIfNeeded: round) | 1
                let zeroed = calloc(size, 1)!
                #expect(zeroed.load(fromByteOffset: size - 1, as: UInt8.self) == 0)
                try deviceFills(zeroed, from: 0, to: size, byte, "calloc round \(round), size \(size)")
                // Grown: the old bytes come along wherever the block goes; the device fills the rest.
                let grown = realloc(zeroed, size * 2)!
                try deviceFills(grown, from: size, to: size * 2, byte &+ 1, "realloc round \(round), size \(size * 2)")
                if grown.load(as: UInt8.self) != byte || grown.load(fromByteOffset: size - 1, as: UInt8.self) != byte {
                    Issue.record("realloc round \(round): the device's bytes did not follow the block")
                }
                free(grown)
                let object = svm_test_new_bytes(size)!
                try deviceFills(object, from: 0, to: size, byte &+ 2, "new[] round \(round), size \(size)")
                svm_test_delete_bytes(object)
            }
        }
    }

    /// Small heap blocks stay in system memory and unwatched; a large block migrates.
    @Test func heapBlocksAreUsedInPlace() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let small = malloc(4096)!
        defer { free(small) }
        try f.run(.fill(destination: UInt64(UInt(bitPattern: small)), size: 4096, byte: 5))
        #expect(f.count("migrationsToDevice") == 0 && f.device.usedDeviceMemory == 0)
        #expect(small.load(as: UInt8.self) == 5)
        // Above glibc's largest dynamic mmap threshold (32 MiB): always a mapping of its own,
        // whatever blocks this process freed before.
        let large = malloc(40 << 20)!
        defer { free(large) }
        try f.run(.fill(destination: UInt64(UInt(bitPattern: large)) + (2 << 20), size: 4096, byte: 6))
        // The block starts 16 bytes into its mapping: the fill may straddle two ranges.
        #expect(f.count("migrationsToDevice") >= 1 && f.device.usedDeviceMemory > 0)
        #expect(large.load(fromByteOffset: 2 << 20, as: UInt8.self) == 6)
    }

    /// Blocks allocated on one thread, used by the device and freed on another, their memory
    /// reused at once by the next round, while a third thread allocates and frees too.
    @Test func mallocFreeAcrossThreads() async {
        await #expect(processExitsWith: .success) {
            alarm(120)
            let f = try SimDeviceFixture()
            defer { f.shutdown() }
            let handOff = Locked<[UInt]>([])
            let churn = TestThread {
                for round in 0..<1000 {
                    let block = malloc(MallocMemoryTests.sizes[round % 4])
                    memset(block!, 1, MallocMemoryTests.sizes[round % 4])
                    free(block)
                }
            }
            let freer = TestThread {
                var freed = 0
                while freed < 500 {
                    let blocks = handOff.withLock { list in defer { list.removeAll() }; return list }
                    for block in blocks { free(UnsafeMutableRawPointer(bitPattern: block)) }
                    freed += blocks.count
                    if blocks.isEmpty { sched_yield() }
                }
            }
            for round in 0..<500 {
                let size = MallocMemoryTests.sizes[round % MallocMemoryTests.sizes.count]
                let block = malloc(size)!
                let byte = UInt8(truncatingIfNeeded: round) | 1
                let result = try f.device.run(.fill(destination: UInt64(UInt(bitPattern: block)), size: UInt64(size), byte: byte))
                #expect(result.stoppedBy == nil, "round \(round)")
                let bytes = block.assumingMemoryBound(to: UInt8.self)
                if bytes[0] != byte || bytes[size - 1] != byte { Issue.record("round \(round), size \(size)") }
                handOff.withLock { $0.append(UInt(bitPattern: block)) }
            }
            churn.join()
            freer.join()
        }
    }
}
