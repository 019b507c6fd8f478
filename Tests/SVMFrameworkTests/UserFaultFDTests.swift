import CSVMPlatform
import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// Real userfaultfd on real memory: a worker thread touches registered pages and sleeps in
/// the kernel while the test thread reads the event and resolves it. Every wait has a
/// timeout, so a bug fails the test instead of hanging it.
@Suite("userfaultfd", .timeLimit(.minutes(1)))
struct UserFaultFDTests {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    @Test("The handshake enables the mirror's features")
    func handshake() throws {
        let uffd = try UserFaultFD()
        #expect(uffd.features.isSuperset(of: UserFaultFD.mirrorFeatures))
        #expect(uffd.availableFeatures.isSuperset(of: uffd.features))
        #expect(uffd.isUserModeOnly)
        #expect(uffd.features.contains(.move) == uffd.supportsMove)
        print("userfaultfd enabled \(uffd.features), kernel offers \(uffd.availableFeatures)")
    }

    @Test("A missing fault is resolved with UFFDIO_COPY and the toucher sees the bytes")
    func copyResolvesMissingFault() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        defer { region.unmap(after: uffd) }
        let ioctls = try uffd.register(region.start, length: region.length, modes: .missing)
        #expect(ioctls.isSuperset(of: [.copy, .zeroPage, .wake]))
        #expect(!ioctls.contains(.writeProtect), "WP is offered only for WP registrations")

        let target = region.page(1) + 123
        let toucher = Worker { peek(target) }
        let event = try uffd.waitForEvent(timeout: .seconds(5))
        #expect(event == .pagefault(address: region.page(1), isWrite: false, isWriteProtect: false))

        let pattern = (0..<pageSize).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let outcome = try pattern.withUnsafeBytes { bytes in
            try uffd.copy(to: region.page(1), from: bytes.baseAddress!, length: pageSize)
        }
        #expect(outcome == .completed)
        #expect(toucher.result(timeout: .seconds(5)) == pattern[123])
        #expect(bytes(at: region.page(1), count: pageSize) == pattern)

        // The page is present now: a second resolver loses the race and must only wake.
        let again = try pattern.withUnsafeBytes { bytes in
            try uffd.copy(to: region.page(1), from: bytes.baseAddress!, length: pageSize)
        }
        #expect(again == .alreadyPresent)
        #expect(try uffd.readEvent() == nil)
    }

    @Test("UFFDIO_ZEROPAGE resolves a fault with zeros; a later write needs no event")
    func zeroPage() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 1)
        defer { region.unmap(after: uffd) }
        try uffd.register(region.start, length: region.length, modes: .missing)

        let start = region.start
        let toucher = Worker { peek(start + 9) }
        #expect(try uffd.waitForEvent(timeout: .seconds(5))
            == .pagefault(address: start, isWrite: false, isWriteProtect: false))
        #expect(try uffd.zeroPage(start, length: pageSize) == .completed)
        #expect(toucher.result(timeout: .seconds(5)) == 0)

        poke(start + 9, 0x5A)
        #expect(peek(start + 9) == 0x5A)
        #expect(try uffd.readEvent() == nil)
    }

    @Test("A write-protected page makes the writer wait until it is unprotected")
    func writeProtect() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 1)
        defer { region.unmap(after: uffd) }
        poke(region.start + 40, 1)  // populate: protection applies to present pages
        let ioctls = try uffd.register(region.start, length: region.length, modes: .writeProtect)
        #expect(ioctls.contains(.writeProtect))
        #expect(try uffd.writeProtect(region.start, length: pageSize) == .completed)

        let start = region.start
        let writer = Worker { poke(start + 40, 2); return true }
        #expect(try uffd.waitForEvent(timeout: .seconds(5))
            == .pagefault(address: start, isWrite: true, isWriteProtect: true))
        #expect(!writer.isFinished)
        #expect(peek(start + 40) == 1, "reads pass, the write waits")

        #expect(try uffd.writeUnprotect(start, length: pageSize) == .completed)
        #expect(writer.result(timeout: .seconds(5)) == true)
        #expect(peek(start + 40) == 2)
    }

    @Test("Ranges that are not registered answer notRegistered; failures name the ioctl and address")
    func outcomesAndErrors() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        defer { region.unmap(after: uffd) }
        #expect(try fill(uffd, region.start, with: 7) == .notRegistered)
        #expect(try uffd.writeProtect(region.start, length: pageSize) == .notRegistered)

        let unaligned = region.start + 1
        let error = #expect(throws: UserFaultFDError.self) {
            try uffd.register(unaligned, length: pageSize, modes: .missing)
        }
        #expect(error == .failed(.register, address: unaligned, errno: EINVAL))
        #expect(error?.description == "UFFDIO_REGISTER at 0x\(String(unaligned, radix: 16)): EINVAL (Invalid argument)")
        #expect(UserFaultFDError.failed(.copy, address: 0x7f00_0000_1000, errno: EEXIST).description
            == "UFFDIO_COPY at 0x7f0000001000: EEXIST (File exists)")

        let refused = UserFaultFDError.unavailable(errno: EPERM, userModeOnly: false).description
        #expect(refused.contains("vm.unprivileged_userfaultfd") && refused.contains("UFFD_USER_MODE_ONLY"))
        #expect(UserFaultFDError.unavailable(errno: ENOSYS, userModeOnly: true).description
            .contains("CONFIG_USERFAULTFD"))
    }

    @Test("munmap raises UNMAP; while it is unread, resolving answers mappingChanging")
    func unmapEvent() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        try uffd.register(region.start, length: region.length, modes: .missing)

        // The unmapping thread sleeps in munmap until the event is read: not the test thread.
        let (start, length) = (region.start, region.length)
        let unmapper = Worker { munmap(UnsafeMutableRawPointer(bitPattern: start), length) == 0 ? 0 : errno }
        #expect(try uffd.waitUntilReadable(timeout: .seconds(5)))
        #expect(try fill(uffd, start, with: 1) == .mappingChanging)
        #expect(!unmapper.isFinished)

        #expect(try uffd.readEvent() == .unmap(start: start, end: start + UInt(length)))
        #expect(unmapper.result(timeout: .seconds(5)) == 0)
        // Nothing more to check at `start`: any thread may map something there right away.
    }

    @Test("mmap(MAP_FIXED) over a registered range raises UNMAP; the new mapping is not registered")
    func replacedMapping() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        defer { region.unmap(after: uffd) }
        try uffd.register(region.start, length: region.length, modes: .missing)

        let (start, length) = (region.start, region.length)
        let mapper = Worker {
            let address = mmap(
                UnsafeMutableRawPointer(bitPattern: start), length, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
            return UInt(bitPattern: address)
        }
        #expect(try uffd.waitForEvent(timeout: .seconds(5)) == .unmap(start: start, end: start + UInt(length)))
        #expect(mapper.result(timeout: .seconds(5)) == start)
        // The addresses are still ours, so this is deterministic (after a plain munmap another
        // thread's registered mapping could take them, and the copy would land there).
        #expect(try fill(uffd, start, with: 1) == .notRegistered)
        #expect(try uffd.readEvent() == nil)
    }

    @Test("MADV_DONTNEED raises REMOVE; the range stays registered and its pages missing")
    func removeEvent() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        defer { region.unmap(after: uffd) }
        poke(region.start, 1)
        poke(region.page(1), 2)
        try uffd.register(region.start, length: region.length, modes: .missing)

        let (start, length) = (region.start, region.length)
        let advisor = Worker {
            madvise(UnsafeMutableRawPointer(bitPattern: start), length, MADV_DONTNEED) == 0 ? 0 : errno
        }
        #expect(try uffd.waitForEvent(timeout: .seconds(5)) == .remove(start: start, end: start + UInt(length)))
        #expect(advisor.result(timeout: .seconds(5)) == 0)

        #expect(try fill(uffd, region.page(1), with: 9) == .completed)
        #expect(peek(region.page(1)) == 9)
    }

    @Test("mremap raises REMAP, then UNMAP of the old range; the moved mapping stays registered")
    func remapEvent() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 2)
        let target = try TestMapping(pages: 2, protection: PROT_NONE)  // a free place to move to
        defer { target.unmap(after: uffd) }
        try uffd.register(region.start, length: region.length, modes: .missing)

        let (from, to, length) = (region.start, target.start, region.length)
        let remapper = Worker {
            var moved: UnsafeMutableRawPointer?
            let status = svm_mremap_fixed(
                UnsafeMutableRawPointer(bitPattern: from), UInt64(length), UInt64(length),
                UnsafeMutableRawPointer(bitPattern: to), &moved)
            return status == 0 ? UInt(bitPattern: moved) : 0
        }
        // Two events, each holding the remapping thread until read: the move, then the
        // unmapping of the old range (which the remap already emptied).
        #expect(try uffd.waitForEvent(timeout: .seconds(5)) == .remap(from: from, to: to, length: UInt(length)))
        #expect(try uffd.waitForEvent(timeout: .seconds(5)) == .unmap(start: from, end: from + UInt(length)))
        #expect(remapper.result(timeout: .seconds(5)) == to)

        #expect(try fill(uffd, to, with: 4) == .completed)
        #expect(peek(to) == 4)
    }

    @Test("UFFDIO_MOVE moves a staging page into a fault without a copy")
    func movePage() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 1)
        let staging = try TestMapping(pages: 1)
        defer {
            region.unmap(after: uffd)
            staging.unmap(after: uffd)
        }
        try uffd.register(region.start, length: region.length, modes: .missing)
        guard uffd.supportsMove else {
            // Before Linux 6.8: a clear error, no ioctl.
            #expect(throws: UserFaultFDError.unsupported(.move)) {
                try uffd.move(to: region.start, from: staging.start, length: pageSize)
            }
            print("UFFDIO_MOVE is not supported by this kernel")
            return
        }
        for offset in 0..<pageSize { poke(staging.start + UInt(offset), UInt8(truncatingIfNeeded: offset ^ 0xA5)) }

        let start = region.start
        let toucher = Worker { peek(start + 300) }
        #expect(try uffd.waitForEvent(timeout: .seconds(5))
            == .pagefault(address: start, isWrite: false, isWriteProtect: false))
        #expect(try uffd.move(to: start, from: staging.start, length: pageSize) == .completed)
        #expect(toucher.result(timeout: .seconds(5)) == UInt8(truncatingIfNeeded: 300 ^ 0xA5))
        #expect(peek(staging.start + 300) == 0, "the source is a hole now")

        // The destination is present now: a second move loses like a second copy.
        #expect(try uffd.move(to: start, from: staging.start, length: pageSize) == .alreadyPresent)
    }

    @Test("User-mode-only: the kernel's own access to a missing page fails with EFAULT, no event")
    func userModeOnly() throws {
        let uffd = try UserFaultFD()
        let region = try TestMapping(pages: 1)
        defer { region.unmap(after: uffd) }
        try uffd.register(region.start, length: region.length, modes: .missing)

        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        try #require(zero >= 0)
        defer { close(zero) }
        let count = read(zero, UnsafeMutableRawPointer(bitPattern: region.start), pageSize)
        let code = errno
        #expect(count == -1 && code == EFAULT)
        #expect(try uffd.readEvent() == nil)
    }
}

// MARK: - Fixtures

extension UserFaultFDTests {
    /// UFFDIO_COPY of one page filled with `value`.
    func fill(_ uffd: UserFaultFD, _ destination: UInt, with value: UInt8) throws -> UserFaultFD.RangeOutcome {
        let page = [UInt8](repeating: value, count: pageSize)
        return try page.withUnsafeBytes { try uffd.copy(to: destination, from: $0.baseAddress!, length: pageSize) }
    }
}

/// An anonymous private mapping, unmapped explicitly: munmap of a range still registered
/// with UNMAP events would sleep until someone reads the event.
fileprivate final class TestMapping: Sendable {
    let start: UInt
    let length: Int

    init(pages: Int, protection: Int32 = PROT_READ | PROT_WRITE, flags: Int32 = MAP_PRIVATE | MAP_ANONYMOUS) throws {
        let length = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        let address = mmap(nil, length, protection, flags, -1, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemCallFailure(name: "mmap", errno: errno)
        }
        self.start = UInt(bitPattern: address)
        self.length = length
    }

    var end: UInt { start + UInt(length) }

    func page(_ index: Int) -> UInt { start + UInt(index * Int(sysconf(Int32(_SC_PAGESIZE)))) }

    /// Unregisters (which also wakes threads still waiting on it), then unmaps.
    func unmap(after uffd: UserFaultFD) {
        try? uffd.unregister(start, length: length)
        try? uffd.wake(start, length: length)
        munmap(UnsafeMutableRawPointer(bitPattern: start), length)
    }
}

fileprivate struct SystemCallFailure: Error {
    let name: String
    let errno: Int32
}

/// A thread running `body`; `result(timeout:)` gives up instead of hanging on a thread that
/// stays blocked in a fault.
fileprivate final class Worker<Value: Sendable>: Sendable {
    private let thread: TestThread
    private let box = Box()

    private final class Box: Sendable {
        let value = Locked<Value?>(nil)
    }

    init(_ body: @escaping @Sendable () -> Value) {
        let box = self.box
        thread = TestThread {
            let result = body()
            box.value.withLock { $0 = result }
        }
    }

    var isFinished: Bool { box.value.withLock { $0 != nil } }

    /// The body's value, or `nil` if it has not returned within `timeout` (the thread is
    /// then detached and left behind).
    func result(timeout: Duration) -> Value? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if let value = box.value.withLock({ $0 }) {
                thread.join()
                return value
            }
            usleep(1000)
        }
        thread.detach()
        return nil
    }
}

fileprivate func peek(_ address: UInt) -> UInt8 {
    UnsafePointer<UInt8>(bitPattern: address)!.pointee
}

fileprivate func poke(_ address: UInt, _ value: UInt8) {
    UnsafeMutablePointer<UInt8>(bitPattern: address)!.pointee = value
}

fileprivate func bytes(at address: UInt, count: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: UnsafePointer<UInt8>(bitPattern: address), count: count))
}
