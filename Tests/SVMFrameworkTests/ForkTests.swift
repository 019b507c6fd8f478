import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// `fork()` after data migrated to a device (the kernel's HMM `anon_write_child` and IGT's
/// fork-then-read): the child sees exactly the parent's data at the time of the fork, the
/// parent keeps its own, and neither sees the other's later writes.
///
/// Each case runs in a process of its own (an exit test): a fork copies the whole test
/// process, and the fork brings every device-resident range of every context home.
@Suite struct ForkTests {
    static let size = 4 << 20

    /// How the data was made before the fork.
    enum Writer: String, Codable, Sendable, CaseIterable {
        /// The CPU wrote it; a device read migrated it.
        case cpu
        /// A device kernel wrote it in device memory.
        case device
    }

    /// With and without transparent huge pages, and who wrote the data.
    struct Scenario: Codable, Sendable, CustomTestStringConvertible {
        var hugePages: Bool
        var writer: Writer
        var testDescription: String { "\(writer) wrote, \(hugePages ? "THP" : "no THP")" }
        static let all = [false, true].flatMap { huge in Writer.allCases.map { Scenario(hugePages: huge, writer: $0) } }
    }

    @Test(arguments: [MigrationPath.zeroCopy, .copy], Scenario.all)
    func childSeesTheDataOfTheFork(path: MigrationPath, scenario: Scenario) async {
        await #expect(processExitsWith: .success) { [path, scenario] in
            let (hugePages, writer) = (scenario.hugePages, scenario.writer)
            let f = try SimDeviceFixture(options: path.options)
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: ForkTests.size)
            madvise(buffer.base, buffer.size, hugePages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)
            var expected = [UInt8](repeating: 0, count: buffer.size)
            switch writer {
            case .cpu:
                buffer.fill(seed: 21)
                for i in expected.indices { expected[i] = MappedBuffer.pattern(i, seed: 21) }
                _ = try f.deviceRead(buffer.address, buffer.size)
            case .device:
                // A different byte per 64 KiB, and the last page left untouched (a hole).
                for chunk in stride(from: 0, to: buffer.size - 4096, by: 64 << 10) {
                    let length = min(64 << 10, buffer.size - 4096 - chunk)
                    try f.run(.fill(destination: buffer.address + UInt64(chunk), size: UInt64(length), byte: UInt8(truncatingIfNeeded: chunk >> 16) | 1))
                    for i in chunk..<chunk + length { expected[i] = UInt8(truncatingIfNeeded: chunk >> 16) | 1 }
                }
            }
            #expect(f.device.usedDeviceMemory > 0, "the data is in device memory before the fork")
            var pipe: [Int32] = [0, 0]
            #expect(Glibc.pipe(&pipe) == 0)
            let child = fork()
            if child == 0 {
                // Async-signal-safe only: compare, wait for the parent's writes, compare again.
                let first = ForkTests.mismatches(buffer, expected)
                var byte: UInt8 = 0
                _ = read(pipe[0], &byte, 1)
                let second = ForkTests.mismatches(buffer, expected)
                _exit(first == 0 && second == 0 ? 0 : first > 0 ? 1 : 2)
            }
            #expect(child > 0)
            #expect(f.device.usedDeviceMemory == 0, "the fork brought the data home")
            #expect(f.count("forkMigrations") >= 1 && f.count("forksPrepared") == 1)
            // The parent writes after the fork, on the device: the child must not see it.
            try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0xEE))
            var byte: UInt8 = 1
            _ = write(pipe[1], &byte, 1)
            var status: Int32 = 0
            #expect(waitpid(child, &status, 0) == child)
            let exitCode = (status >> 8) & 0xff
            #expect(status & 0x7f == 0 && exitCode == 0,
                    "child: \(exitCode == 1 ? "wrong data at the fork" : exitCode == 2 ? "saw the parent's later writes" : "status \(status)")")
            let (bytes, result) = try f.deviceRead(buffer.address, buffer.size)
            #expect(result.stoppedBy == nil && bytes.allSatisfy { $0 == 0xEE }, "the parent keeps its own data")
            #expect((0..<buffer.size).allSatisfy { buffer.bytes[$0] == 0xEE })
        }
    }

    /// The child writes its copy; the parent's data, device-resident again, is untouched.
    @Test func childWritesDoNotReachTheParent() async {
        await #expect(processExitsWith: .success) {
            let f = try SimDeviceFixture()
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: 2 << 20)
            try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x5A))
            let child = fork()
            if child == 0 {
                memset(buffer.base, 0x11, buffer.size)
                _exit(buffer.bytes[buffer.size - 1] == 0x11 ? 0 : 1)
            }
            var status: Int32 = 0
            #expect(waitpid(child, &status, 0) == child && status == 0)
            let (bytes, _) = try f.deviceRead(buffer.address, buffer.size)
            #expect(bytes.allSatisfy { $0 == 0x5A })
            #expect(f.count("migrationsToDevice") == 2, "migrated again after the fork: \(f.context.statistics.snapshot.filter { $0.value != 0 })")
        }
    }

    /// A copy of the context in a forked child refuses device work instead of hanging on a
    /// handler thread that stayed in the parent.
    @Test func forkedCopyRefusesDeviceFaults() async {
        await #expect(processExitsWith: .success) {
            let f = try SimDeviceFixture()
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: 2 << 20)
            let child = fork()
            if child == 0 {
                let copy = f.context.isForkedCopy
                let refused: Bool
                do {
                    try f.context.handleDeviceFault(hostDevice: f.device.deviceID, address: buffer.address, access: .read)
                    refused = false
                } catch {
                    refused = (error as? PluginErrno) == .noDevice
                }
                _exit(copy && refused ? 0 : 1)
            }
            var status: Int32 = 0
            #expect(waitpid(child, &status, 0) == child && status == 0)
            #expect(!f.context.isForkedCopy)
        }
    }

    /// Bytes of `buffer` that differ from `expected`, without allocating (a forked child).
    static func mismatches(_ buffer: MappedBuffer, _ expected: [UInt8]) -> Int {
        expected.withUnsafeBufferPointer { expected in
            var wrong = 0
            for i in 0..<buffer.size where buffer.bytes[i] != expected[i] { wrong += 1 }
            return wrong
        }
    }
}
