import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// The kernel's own accesses to device-resident memory (`read(2)`, `write(2)`, `mlock`).
/// The mirror serves user-mode faults only, so they fail; the context says so once, and the
/// data is intact and reachable from the CPU, after which the same calls work.
@Suite struct KernelAccessTests {
    @Test func kernelAccessToDeviceResidentMemoryFailsAndIsReported() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        #expect(f.context.kernelAccessLimitation != nil)
        #expect(f.context.limitations.count == 1)
        #expect(f.count("mirrorUserModeOnly") == 1)
        let buffer = MappedBuffer(size: 2 << 20)
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x3C))
        #expect(f.device.usedDeviceMemory > 0)
        var pipe: [Int32] = [0, 0]
        #expect(Glibc.pipe(&pipe) == 0)
        defer { close(pipe[0]); close(pipe[1]) }
        // write(2) from device-resident memory: the kernel's read of the hole fails.
        errno = 0
        #expect(write(pipe[1], buffer.base, 4096) == -1 && errno == EFAULT)
        // read(2) into it: the kernel's write fails.
        let source = [UInt8](repeating: 0x77, count: 4096)
        #expect(write(pipe[1], source, 4096) == 4096)
        errno = 0
        #expect(read(pipe[0], buffer.base + 4096, 4096) == -1 && errno == EFAULT)
        errno = 0
        #expect(mlock(buffer.base, buffer.size) == -1 && errno == ENOMEM)
        // The data is intact, and the CPU brings it back; then the kernel reaches it.
        #expect(buffer.bytes[0] == 0x3C && buffer.bytes[buffer.size - 1] == 0x3C)
        #expect(f.device.usedDeviceMemory == 0)
        #expect(read(pipe[0], buffer.base + 4096, 4096) == 4096)
        #expect(buffer.bytes[4096] == 0x77 && buffer.bytes[8192] == 0x3C)
        #expect(write(pipe[1], buffer.base, 4096) == 4096)
        #expect(mlock(buffer.base, buffer.size) == 0)
        munlock(buffer.base, buffer.size)
    }
}
