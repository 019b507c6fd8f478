import CSVMPlatform
import Foundation
import Glibc
import Synchronization
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// The kernel's own accesses to device-resident memory (`read(2)`, `write(2)`, `mlock`,
/// `process_vm_readv`), in both modes of the mirror: where kernel-mode faults are permitted
/// (root here) the mirror serves them and the data comes home; user-mode-only (asked for,
/// or what an unprivileged process gets) they fail, the context says so once, and the data
/// is intact and reachable from the CPU, after which the same calls work.
@Suite struct KernelAccessTests {
    static let size = 2 << 20

    /// Whether this process may have a userfaultfd that sees kernel-mode faults: the system
    /// call without `UFFD_USER_MODE_ONLY`, or `/dev/userfaultfd`.
    static let kernelFaultsPermitted =
        (try? UserFaultFD(opening: .systemCall)) != nil || (try? UserFaultFD(opening: .device)) != nil

    @Test(.enabled(if: kernelFaultsPermitted, "kernel-mode faults are not permitted to this process"))
    func kernelAccessesToDeviceResidentMemoryAreServed() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        #expect(f.context.mirrorOpening == .systemCall)
        #expect(f.context.kernelAccessLimitation == nil && f.context.limitations.isEmpty)
        #expect(f.count("mirrorUserModeOnly") == 0)
        let buffer = MappedBuffer(size: Self.size)
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x3C))
        #expect(f.device.usedDeviceMemory > 0)
        var pipe: [Int32] = [0, 0]
        #expect(Glibc.pipe(&pipe) == 0)
        defer { close(pipe[0]); close(pipe[1]) }

        // write(2) from device-resident memory: the kernel's read of the hole brings it home.
        let homeBefore = f.count("cpuFaultMigrations")
        #expect(write(pipe[1], buffer.base, 4096) == 4096)
        var out = [UInt8](repeating: 0, count: 4096)
        #expect(read(pipe[0], &out, 4096) == 4096)
        #expect(out.allSatisfy { $0 == 0x3C })
        #expect(f.count("cpuFaultMigrations") == homeBefore + 1)
        #expect(f.device.usedDeviceMemory == 0)

        // read(2) into it: the kernel's write lands, next to the device's bytes.
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x3D))
        #expect(f.device.usedDeviceMemory > 0)
        let source = [UInt8](repeating: 0x77, count: 4096)
        #expect(write(pipe[1], source, 4096) == 4096)
        #expect(read(pipe[0], buffer.base + 4096, 4096) == 4096)
        #expect(f.device.usedDeviceMemory == 0)
        #expect(buffer.bytes[0] == 0x3D && buffer.bytes[4096] == 0x77 && buffer.bytes[8191] == 0x77)
        #expect(buffer.bytes[8192] == 0x3D && buffer.bytes[buffer.size - 1] == 0x3D)

        // process_vm_readv of the process's own device-resident memory (what a debugger's
        // or another process's read does).
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x3E))
        var words = [UInt8](repeating: 0, count: 64)
        let copied = words.withUnsafeMutableBytes { svm_process_vm_read($0.baseAddress, buffer.address + 100_000, 64) }
        #expect(copied == 64 && words.allSatisfy { $0 == 0x3E })

        // mlock: every page comes home and stays; the device then uses it in place, since
        // locked pages do not move, and its writes land. (Not where mlock locks nothing:
        // ThreadSanitizer's.)
        guard mlockLocksMemory else { return }
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x3F))
        #expect(f.device.usedDeviceMemory > 0)
        #expect(mlock(buffer.base, buffer.size) == 0)
        defer { munlock(buffer.base, buffer.size) }
        #expect(f.device.usedDeviceMemory == 0)
        #expect(buffer.bytes[0] == 0x3F && buffer.bytes[buffer.size - 1] == 0x3F)
        try f.run(.fill(destination: buffer.address, size: UInt64(buffer.size), byte: 0x40))
        #expect(f.device.usedDeviceMemory == 0)
        #expect(buffer.bytes[0] == 0x40 && buffer.bytes[buffer.size / 2] == 0x40 && buffer.bytes[buffer.size - 1] == 0x40)
    }

    /// DESIGN's invariant 4 with kernel-mode faults: a device read of a system page that a
    /// CPU thread discards meanwhile waits in the kernel for the mirror, whose handler zaps
    /// the device for that discard. SimDevice makes system accesses without its page-table
    /// lock, so the zap does not wait for the read that waits for the handler. In a child
    /// process with a time limit: a deadlock fails this test, not the suite.
    @Test(.enabled(if: kernelFaultsPermitted, "kernel-mode faults are not permitted to this process"))
    func deviceReadsRacingDiscardsNeverDeadlock() async {
        await #expect(processExitsWith: .success) {
            alarm(120)
            let f = try SimDeviceFixture(policy: .systemMemory)
            defer { f.shutdown() }
            let buffer = MappedBuffer(size: KernelAccessTests.size)
            buffer.fill(seed: 5)
            let stop = Atomic<Bool>(false)
            let base = UInt(bitPattern: buffer.base)
            let discarder = TestThread {
                var page = 0
                while !stop.load(ordering: .relaxed) {
                    madvise(UnsafeMutableRawPointer(bitPattern: base + UInt(page % 512) * 4096), 4096, MADV_DONTNEED)
                    page += 7
                    // A pause, as any program's work between discards is: a thread that
                    // only discards keeps a change pending nearly all the time, and
                    // userfaultfd refuses every fill meanwhile (see TheCPUMirror, "Limits").
                    usleep(10)
                }
            }
            var wrong = 0
            // 20 reads of 2 MiB, or as many as 5 s allow on a loaded machine (each read
            // meets some 70 discarded pages, each a kernel-mode fault the handler serves
            // between the discards), at least one.
            let start = ContinuousClock.now
            var reads = 0
            while reads < 20 && (reads == 0 || ContinuousClock.now - start < .seconds(5)) {
                reads += 1
                let (bytes, result) = try f.deviceRead(buffer.address, buffer.size)
                #expect(result.stoppedBy == nil)
                // Each page reads as written, or as zeros once discarded.
                for page in stride(from: 0, to: bytes.count, by: 4096) where bytes[page] != MappedBuffer.pattern(page, seed: 5) {
                    if bytes[page..<page + 4096].contains(where: { $0 != 0 }) { wrong += 1 }
                }
            }
            stop.store(true, ordering: .relaxed)
            discarder.join()
            #expect(wrong == 0)
            #expect(f.count("cpuZeroFills") > 0, "the device's reads of discarded pages were served by the mirror")
        }
    }

    @Test func userModeOnlyKernelAccessesFailAndAreReported() throws {
        let f = try SimDeviceFixture(kernelFaults: .never)
        defer { f.shutdown() }
        #expect(f.context.mirrorOpening == .userModeOnly)
        let limitation = try #require(f.context.kernelAccessLimitation)
        #expect(limitation.contains("kernel-mode faults were not asked for"))
        #expect(f.context.limitations == [limitation])
        #expect(f.count("mirrorUserModeOnly") == 1)
        let buffer = MappedBuffer(size: Self.size)
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
        if mlockLocksMemory { #expect(mlock(buffer.base, buffer.size) == -1 && errno == ENOMEM) }
        #expect(f.device.usedDeviceMemory > 0, "nothing came home for the kernel")
        // The data is intact, and the CPU brings it back; then the kernel reaches it.
        #expect(buffer.bytes[0] == 0x3C && buffer.bytes[buffer.size - 1] == 0x3C)
        #expect(f.device.usedDeviceMemory == 0)
        #expect(read(pipe[0], buffer.base + 4096, 4096) == 4096)
        #expect(buffer.bytes[4096] == 0x77 && buffer.bytes[8192] == 0x3C)
        #expect(write(pipe[1], buffer.base, 4096) == 4096)
        #expect(mlock(buffer.base, buffer.size) == 0)
        munlock(buffer.base, buffer.size)
    }

    /// What an unprivileged process gets: run as `nobody` in a child process (root drops
    /// its privileges there), the mirror opens user-mode-only unless the machine permits
    /// more to everyone, and the limitation names what was refused.
    @Test(.enabled(if: getuid() == 0, "needs root, to become another user"))
    func unprivilegedProcessGetsUserModeOnlyAndIsTold() async {
        await #expect(processExitsWith: .success) {
            alarm(60)
            guard setgid(65534) == 0, setuid(65534) == 0 else { _exit(3) }
            // The rules of the kernel, not of the framework: the system call needs
            // CAP_SYS_PTRACE (gone with setuid) unless the sysctl says 1; the device needs
            // its file mode to let this user in.
            let sysctl = (try? String(contentsOfFile: "/proc/sys/vm/unprivileged_userfaultfd", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let permitted = sysctl == "1" || access("/dev/userfaultfd", R_OK | W_OK) == 0
            let context = SVMContext()
            defer { context.shutdown() }
            #expect(context.mirrorOpening != nil)
            if permitted {
                #expect(context.mirrorOpening != .userModeOnly && context.kernelAccessLimitation == nil)
            } else {
                #expect(context.mirrorOpening == .userModeOnly)
                let limitation = try #require(context.kernelAccessLimitation)
                #expect(limitation.contains("refused: userfaultfd(): EPERM"), "\(limitation)")
                #expect(limitation.contains("/dev/userfaultfd: E"), "\(limitation)")
                #expect(context.statistics.snapshot["mirrorUserModeOnly"] == 1)
            }
        }
    }
}
