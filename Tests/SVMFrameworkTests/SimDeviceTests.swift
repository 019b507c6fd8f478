import CSVMPluginABI
import Dispatch
import Foundation
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

@testable import SVMFramework

/// SimDevice as a simulated GPU, driven through the plugin ABI exactly as the SVM core will
/// drive it: device memory, binds, zaps and kernels that fault through the host.
@Suite("SimDevice")
struct SimDeviceTests {
    static let page = UInt64(MappedBuffer.pageSize)
    static let mebibyte: UInt64 = 1 << 20
    /// A device VA for local-VRAM binds: any address works (nothing CPU-side is touched),
    /// 2 MiB aligned so 2 MiB leaves fit.
    static let vramVA: UInt64 = 0x5000_0000_0000

    func pattern(_ count: Int, seed: Int = 7) -> [UInt8] {
        (0 ..< count).map { UInt8(truncatingIfNeeded: $0 &* seed &+ $0 >> 8 &+ 3) }
    }

    /// `body` with the address of a host buffer, as READ and WRITE kernels take it.
    func withHostBuffer<R>(_ bytes: inout [UInt8], _ body: (UInt64) throws -> R) rethrows -> R {
        try bytes.withUnsafeMutableBytes { try body(UInt64(UInt(bitPattern: $0.baseAddress))) }
    }

    // MARK: Kernels on system memory

    @Test("FILL, WRITE, COPY and READ on system memory move the right bytes; each untouched page faults once")
    func systemKernels() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 16)
        bed.handler.serve(region.range, writable: true)
        let device = bed.device

        var result = try device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 0xAB))
        #expect(result.outcome == KernelResult(faults: 4, bytes: 4 * Self.page))
        #expect(region.bytes(at: 0, count: 4 * Int(Self.page)).allSatisfy { $0 == 0xAB })
        #expect(region.bytes(at: 4 * Int(Self.page), count: Int(Self.page)).allSatisfy { $0 == 0 })
        // Bound now: no faults the second time.
        result = try device.runKernel(.fill(destination: region.address + 10, size: 100, byte: 0xCD))
        #expect(result.outcome == KernelResult(faults: 0, bytes: 100))
        #expect(region.bytes(at: 9, count: 102) == [0xAB] + [UInt8](repeating: 0xCD, count: 100) + [0xAB])

        // WRITE a host buffer into pages 4..<8.
        var source = pattern(4 * Int(Self.page))
        result = try withHostBuffer(&source) {
            try device.runKernel(.write(destination: region.page(4), size: 4 * Self.page, hostBuffer: $0))
        }
        #expect(result.outcome == KernelResult(faults: 4, bytes: 4 * Self.page))
        #expect(region.bytes(at: 4 * Int(Self.page), count: source.count) == source)

        // COPY between unaligned SVM addresses: source bound, destination pages 9 to 11 not.
        let copyFrom = region.page(4) + 100
        let copyTo = region.page(8) + 5000
        result = try device.runKernel(.copy(destination: copyTo, source: copyFrom, size: 10_000))
        #expect(result.outcome == KernelResult(faults: 3, bytes: 10_000))
        #expect(region.bytes(at: Int(copyTo - region.address), count: 10_000) == Array(source[100 ..< 10_100]))
        #expect(bed.handler.faults.suffix(3).map(\.access) == [.write, .write, .write])

        // READ pages 0..<12 back: only page 8 was never touched.
        var readBack = [UInt8](repeating: 0, count: 12 * Int(Self.page))
        result = try withHostBuffer(&readBack) {
            try device.runKernel(.read(source: region.address, size: 12 * Self.page, hostBuffer: $0))
        }
        #expect(result.outcome == KernelResult(faults: 1, bytes: 12 * Self.page))
        #expect(bed.handler.faults.last == .init(hostDevice: SimDeviceTestbed.hostDevice, address: region.page(8), access: .read))
        #expect(readBack == region.bytes(at: 0, count: readBack.count))
    }

    @Test("A zap unmaps the covering pages: the next kernel faults them in again")
    func zapRefaults() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 4)
        bed.handler.serve(region.range, writable: true)
        #expect(try bed.device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 1)).faults == 4)
        #expect(try bed.device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 2)).faults == 0)

        try bed.device.zap(address: region.address, size: 4 * Self.page)
        #expect(try bed.device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 3)).faults == 4)

        // One byte inside page 1: the whole leaf goes, and only it.
        try bed.device.zap(address: region.page(1) + 10, size: 1)
        let result = try bed.device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 4))
        #expect(result.faults == 1)
        #expect(bed.handler.faults.last?.address == region.page(1))
        #expect(region.bytes(at: 0, count: region.size).allSatisfy { $0 == 4 })
        // Zapping what was never bound, or past the 48-bit VA space, is fine.
        try bed.device.zap(address: 0x10_0000, size: 64 * Self.page)
        try bed.device.zap(address: 1 << 50, size: Self.page)
    }

    @Test("A fault the host refuses stops the kernel with its status and address; the bytes before stay")
    func refusedFault() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 4)
        bed.handler.serve(region.address ..< region.page(2), writable: true)
        let result = try bed.device.runKernel(.fill(destination: region.address, size: 4 * Self.page, byte: 9))
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: region.page(2), faults: 3, bytes: 2 * Self.page))
        #expect(region.bytes(at: 0, count: 2 * Int(Self.page)).allSatisfy { $0 == 9 })
        #expect(region.bytes(at: 2 * Int(Self.page), count: 2 * Int(Self.page)).allSatisfy { $0 == 0 })

        // Past the 48-bit VA space there is no translation either: the host says so.
        let far = try bed.device.runKernel(.fill(destination: 1 << 50, size: 16, byte: 1))
        #expect(far.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: 1 << 50, faults: 1, bytes: 0))
    }

    @Test("A stale binding to unmapped CPU memory: process_vm_* get EFAULT, the device faults, the process lives")
    func staleBinding() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 2)
        bed.handler.serve(region.range, writable: true)
        region.store(pattern(2 * Int(Self.page)), at: 0)
        var buffer = [UInt8](repeating: 0, count: 2 * Int(Self.page))
        var result = try withHostBuffer(&buffer) {
            try bed.device.runKernel(.read(source: region.address, size: 2 * Self.page, hostBuffer: $0))
        }
        #expect(result.outcome == KernelResult(faults: 2, bytes: 2 * Self.page))
        #expect(buffer == pattern(2 * Int(Self.page)))

        // Page 1 goes away on the CPU; the device keeps its translation (no zap).
        region.unmapKeepingAddresses(pages: 1 ..< 2)
        bed.handler.withdraw(region.page(1) ..< region.page(2))
        buffer = [UInt8](repeating: 0, count: 2 * Int(Self.page))
        result = try withHostBuffer(&buffer) {
            try bed.device.runKernel(.read(source: region.address, size: 2 * Self.page, hostBuffer: $0))
        }
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: region.page(1), faults: 1, bytes: Self.page))
        #expect(Array(buffer.prefix(Int(Self.page))) == Array(pattern(2 * Int(Self.page)).prefix(Int(Self.page))))
        #expect(bed.handler.faults.last?.access == .read)

        // Writes through the stale translation fault the same way, with .write.
        result = try bed.device.runKernel(.fill(destination: region.page(1) + 8, size: 8, byte: 1))
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: region.page(1) + 8, faults: 1, bytes: 0))
        #expect(bed.handler.faults.last?.access == .write)
    }

    @Test("A missing page of a user-mode-only userfaultfd is EFAULT for the device, not a hang")
    func userfaultfdMissingPage() throws {
        let bed = try SimDeviceTestbed()
        let uffd = try UserFaultFD()
        let region = MappedBuffer(pages: 1)
        try uffd.register(UInt(region.address), length: region.size, modes: .missing)
        defer { try? uffd.unregister(UInt(region.address), length: region.size) }
        // Bound as the core would bind a page it believes present; the CPU never touched it.
        try bed.device.bind(
            address: region.address, size: Self.page,
            pieces: [BindPiece(address: region.address, linkProtocol: .system, order: 0)], access: [.writable])
        var buffer = [UInt8](repeating: 0xFF, count: 64)
        let result = try withHostBuffer(&buffer) {
            try bed.device.runKernel(.read(source: region.address, size: 64, hostBuffer: $0))
        }
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: region.address, faults: 1, bytes: 0))
        #expect(try uffd.readEvent() == nil, "the device's access raised no CPU fault")
    }

    @Test("A write through a read-only bind faults with .write")
    func readOnlyBind() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 1)
        region.store([1, 2, 3, 4], at: 0)
        bed.handler.serve(region.range, writable: false)
        var buffer = [UInt8](repeating: 0, count: 4)
        let read = try withHostBuffer(&buffer) {
            try bed.device.runKernel(.read(source: region.address, size: 4, hostBuffer: $0))
        }
        #expect(read.outcome == KernelResult(faults: 1, bytes: 4))
        #expect(buffer == [1, 2, 3, 4])
        let write = try bed.device.runKernel(.fill(destination: region.address + 2, size: 2, byte: 0))
        #expect(write.outcome == KernelResult(stoppedBy: .accessDenied, faultAddress: region.address + 2, faults: 1, bytes: 0))
        #expect(bed.handler.faults.map(\.access) == [.read, .write])
        #expect(region.bytes(at: 0, count: 4) == [1, 2, 3, 4])
    }

    @Test("INCREMENT on system memory faults with .atomic: device atomics need device memory")
    func atomicOnSystemMemory() throws {
        let bed = try SimDeviceTestbed()
        let region = MappedBuffer(pages: 1)
        bed.handler.serve(region.range, writable: true)
        #expect(try bed.device.runKernel(.fill(destination: region.address, size: 16, byte: 0)).faults == 1)
        let result = try bed.device.runKernel(.increment(destination: region.address, size: 16, addend: 1))
        #expect(result.outcome == KernelResult(stoppedBy: .accessDenied, faultAddress: region.address, faults: 1, bytes: 0))
        #expect(bed.handler.faults.last?.access == .atomic)
        #expect(region.bytes(at: 0, count: 16).allSatisfy { $0 == 0 })
    }

    @Test("A host that answers 'replay' without mapping anything cannot hang a kernel: EAGAIN after 10 000 faults")
    func replayLimit() throws {
        final class ReplayForever: DeviceFaultHandler {
            func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {}
        }
        let bed = try SimDeviceTestbed()
        bed.setFaultHandler(ReplayForever())
        let result = try bed.device.runKernel(.fill(destination: 0x7000_0000, size: 8, byte: 1))
        #expect(result.outcome == KernelResult(stoppedBy: .tryAgain, faultAddress: 0x7000_0000, faults: 10_000, bytes: 0))
    }

    @Test("Malformed kernels are refused with EINVAL before they touch anything")
    func malformedKernels() throws {
        let bed = try SimDeviceTestbed()
        for kernel: DeviceKernel in [
            .increment(destination: 0x1002, size: 8, addend: 1),
            .increment(destination: 0x1000, size: 6, addend: 1),
            .read(source: 0x1000, size: 8, hostBuffer: 0),
            .write(destination: 0x1000, size: 8, hostBuffer: 0),
            .fill(destination: UInt64.max - 4, size: 8, byte: 0),
            .copy(destination: 0x1000, source: UInt64.max, size: 2),
        ] {
            #expect(throws: PluginErrno.invalidArgument, "\(kernel)") { try bed.device.runKernel(kernel) }
        }
        #expect(bed.handler.faults.isEmpty)
        // An empty kernel is no kernel.
        #expect(try bed.device.runKernel(.fill(destination: 0x1000, size: 0, byte: 0)) == KernelResult())
    }

    // MARK: Device memory

    @Test("Device memory: buddy blocks top-down until ENOMEM, usedBytes, free and reuse, bad sizes")
    func deviceMemoryAllocation() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M"])
        let device = bed.device
        let info = try device.pagemapInfo()
        #expect(info.minPageSize == 4096 && info.capacityBytes == 64 * Self.mebibyte && info.usedBytes == 0)
        // Zero-copy by default: the device memory is declared host memory, all of it.
        #expect(info.isHostMemory && info.hostSize == 64 * Self.mebibyte && info.hostBase % 4096 == 0)
        let copyPath = try SimDeviceTestbed(options: ["memory": "64M", "zero-copy": "off"])
        #expect(try copyPath.device.pagemapInfo() == PagemapInfo(minPageSize: 4096, capacityBytes: 64 * Self.mebibyte, usedBytes: 0))
        #expect((device as? any SVMCapableDevice)?.supportsDeviceMemory == true)
        #expect((device as? any SVMCapableDevice)?.supportsPageTable == true)

        var offsets: [UInt64] = []
        var failure: PluginErrno?
        while failure == nil && offsets.count <= 64 {
            do {
                offsets.append(try device.allocateDeviceMemory(size: 2 * Self.mebibyte))
            } catch let error as PluginErrno {
                failure = error
            }
        }
        #expect(failure == .outOfMemory)
        #expect(offsets.count == 32)
        #expect(offsets.first == 62 * Self.mebibyte, "top-down, as DRM_BUDDY_TOPDOWN_ALLOCATION")
        #expect(Set(offsets) == Set((0 ..< 32).map { UInt64($0) * 2 * Self.mebibyte }))
        #expect(try device.pagemapInfo().usedBytes == 64 * Self.mebibyte)
        #expect(throws: PluginErrno.outOfMemory) { try device.allocateDeviceMemory(size: 4096) }

        device.freeDeviceMemory(offset: offsets[5], size: 2 * Self.mebibyte)
        #expect(try device.pagemapInfo().usedBytes == 62 * Self.mebibyte)
        #expect(try device.allocateDeviceMemory(size: 2 * Self.mebibyte) == offsets[5])
        // A free that names no allocation changes nothing.
        device.freeDeviceMemory(offset: offsets[6], size: 4096)
        device.freeDeviceMemory(offset: 1, size: 2 * Self.mebibyte)
        #expect(try device.pagemapInfo().usedBytes == 64 * Self.mebibyte)

        for size: UInt64 in [0, 2048, 3 * 4096, 128 * Self.mebibyte, UInt64.max] {
            #expect(throws: PluginErrno.invalidArgument, "size \(size)") { try device.allocateDeviceMemory(size: size) }
        }
        for offset in offsets { device.freeDeviceMemory(offset: offset, size: 2 * Self.mebibyte) }
        #expect(try device.pagemapInfo().usedBytes == 0)
        #expect(try device.allocateDeviceMemory(size: 64 * Self.mebibyte) == 0)
    }

    @Test("copy_to_devmem and copy_to_ram round-trip inside an allocation and refuse anything else")
    func deviceMemoryCopies() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "4M", "min-page": "64K"])
        let device = bed.device
        let offset = try device.allocateDeviceMemory(size: 64 << 10)
        let data = pattern(64 << 10)
        try data.withUnsafeBytes { try device.copyToDeviceMemory(offset: offset, from: $0.baseAddress!, size: 64 << 10) }
        var back = [UInt8](repeating: 0, count: 64 << 10)
        try back.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: 64 << 10) }
        #expect(back == data)
        var middle = [UInt8](repeating: 0, count: 100)
        try middle.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset + 4103, to: $0.baseAddress!, size: 100) }
        #expect(middle == Array(data[4103 ..< 4203]))

        let scratch = [UInt8](repeating: 0, count: 128 << 10)
        scratch.withUnsafeBytes { buffer in
            for (start, size) in [
                (offset + (60 << 10), UInt64(8 << 10)),  // runs past the allocation
                (offset == 0 ? UInt64(1 << 20) : 0, UInt64(4096)),  // not allocated
                (UInt64(4 << 20), UInt64(1)),  // past the memory
                (UInt64.max - 10, UInt64(100)),  // wraps around
            ] {
                #expect(throws: PluginErrno.invalidArgument, "0x\(String(start, radix: 16)) + \(size)") {
                    try device.copyToDeviceMemory(offset: start, from: buffer.baseAddress!, size: size)
                }
            }
        }
        device.freeDeviceMemory(offset: offset, size: 64 << 10)
        #expect(throws: PluginErrno.invalidArgument, "copy after free") {
            try back.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: 16) }
        }
    }

    @Test("A free never wipes memory allocated after it: threads allocate, fill, check and free the same blocks")
    func freeRacingAllocation() throws {
        // Two 2 MiB blocks for three threads: every block is freed by one thread and taken
        // by another right away, over and over.
        let bed = try SimDeviceTestbed(options: ["memory": "4M"])
        let device = bed.device
        let size = 2 * Self.mebibyte
        let wrong = Locked<[String]>([])
        let workers = (0 ..< 3).map { thread in
            TestThread {
                // Raw buffers and memcmp: comparing 2 MiB arrays is slow in debug builds.
                let data = UnsafeMutableRawPointer.allocate(byteCount: Int(size), alignment: 4096)
                let back = UnsafeMutableRawPointer.allocate(byteCount: Int(size), alignment: 4096)
                defer { data.deallocate(); back.deallocate() }
                data.initializeMemory(as: UInt8.self, repeating: UInt8(thread + 1), count: Int(size))
                for round in 0 ..< 300 {
                    var offset: UInt64?
                    while offset == nil {
                        do { offset = try device.allocateDeviceMemory(size: size) } catch { sched_yield() }
                    }
                    do {
                        try device.copyToDeviceMemory(offset: offset!, from: data, size: size)
                        try device.copyFromDeviceMemory(offset: offset!, to: back, size: size)
                        if memcmp(data, back, Int(size)) != 0 { wrong.withLock { $0.append("thread \(thread) round \(round): bytes wiped") } }
                    } catch {
                        wrong.withLock { $0.append("thread \(thread) round \(round): \(error)") }
                    }
                    device.freeDeviceMemory(offset: offset!, size: size)
                }
            }
        }
        for worker in workers { worker.join() }
        #expect(wrong.withLock { $0 } == [])
        #expect(try device.pagemapInfo().usedBytes == 0)
    }

    // MARK: Local VRAM

    @Test("A local-VRAM bind: kernels read and write device memory without faults; bad binds are refused")
    func localVRAMBind() throws {
        let bed = try SimDeviceTestbed()
        let device = bed.device
        let offset = try device.allocateDeviceMemory(size: 64 << 10)
        let data = pattern(64 << 10, seed: 13)
        try data.withUnsafeBytes { try device.copyToDeviceMemory(offset: offset, from: $0.baseAddress!, size: 64 << 10) }
        try device.bind(
            address: Self.vramVA, size: 64 << 10,
            pieces: [BindPiece(address: offset, linkProtocol: .localVRAM, order: 4)], access: [.writable])

        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let read = try withHostBuffer(&buffer) {
            try device.runKernel(.read(source: Self.vramVA, size: 64 << 10, hostBuffer: $0))
        }
        #expect(read.outcome == KernelResult(faults: 0, bytes: 64 << 10))
        #expect(buffer == data)

        #expect(try device.runKernel(.fill(destination: Self.vramVA + 100, size: 50, byte: 0xEE)).outcome == KernelResult(bytes: 50))
        var changed = [UInt8](repeating: 0, count: 256)
        try changed.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: 256) }
        #expect(changed == Array(data[0 ..< 100]) + [UInt8](repeating: 0xEE, count: 50) + Array(data[150 ..< 256]))

        // Overlapping, outside the memory, misaligned, peer, or not adding up: refused, and
        // the existing binding is intact.
        let vram = { (address: UInt64, order: UInt8) in BindPiece(address: address, linkProtocol: .localVRAM, order: order) }
        #expect(throws: PluginErrno.invalidArgument) {
            try device.bind(address: Self.vramVA, size: 4096, pieces: [vram(offset, 0)], access: [])
        }
        #expect(throws: PluginErrno.invalidArgument) {
            try device.bind(address: 0x6000_0000_0000, size: 4096, pieces: [vram(64 << 20, 0)], access: [])
        }
        #expect(throws: PluginErrno.invalidArgument) {
            try device.bind(address: 0x6000_0000_0000, size: 64 << 10, pieces: [vram(offset + 4096, 4)], access: [])
        }
        #expect(throws: PluginErrno.invalidArgument) {
            try device.bind(address: 0x6000_0000_0000, size: 8192, pieces: [vram(offset, 0)], access: [])
        }
        #expect(throws: PluginErrno.notSupported) {
            try device.bind(
                address: 0x6000_0000_0000, size: 4096,
                pieces: [BindPiece(address: 0, linkProtocol: .fabric, order: 0)], access: [])
        }
        // A failed bind of several pieces maps none of them.
        #expect(throws: PluginErrno.invalidArgument) {
            try device.bind(
                address: Self.vramVA - 4096, size: 8192, pieces: [vram(offset, 0), vram(offset + 4096, 0)], access: [])
        }
        #expect(try device.runKernel(.fill(destination: Self.vramVA - 4096, size: 1, byte: 0)).stoppedBy == .badAddress)
        #expect(try device.runKernel(.fill(destination: Self.vramVA, size: 1, byte: data[0])).faults == 0)
    }

    @Test("TRIAD and COPY on local VRAM compute in device memory: the bytes staging gives, overlaps included, and the same counters")
    func localVRAMKernels() throws {
        let bed = try SimDeviceTestbed()
        let device = bed.device
        let size = 2 * Self.mebibyte
        let offset = try device.allocateDeviceMemory(size: size)
        let words = Int(size / 4)
        var memory = (0 ..< words).map { UInt32(truncatingIfNeeded: $0) &* 2_654_435_761 &+ 17 }
        try memory.withUnsafeBytes { try device.copyToDeviceMemory(offset: offset, from: $0.baseAddress!, size: size) }
        // One 2 MiB leaf: every step is a whole work item of 64 KiB (16 Ki words).
        try device.bind(
            address: Self.vramVA, size: size,
            pieces: [BindPiece(address: offset, linkProtocol: .localVRAM, order: 9)], access: [.writable])
        func deviceWords() throws -> [UInt32] {
            var words = [UInt32](repeating: 0, count: words)
            try words.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: size) }
            return words
        }
        // What the bounce path gives, item by item: each item's sources are read whole
        // before its destination is written.
        let itemWords = 16 << 10
        func stagedTriad(a: Int, b: Int, c: Int, count: Int, scalar: UInt32) {
            for start in stride(from: 0, to: count, by: itemWords) {
                let end = min(count, start + itemWords)
                let (bs, cs) = (Array(memory[b + start ..< b + end]), Array(memory[c + start ..< c + end]))
                for index in 0 ..< end - start { memory[a + start + index] = bs[index] &+ scalar &* cs[index] }
            }
        }
        func va(_ word: Int) -> UInt64 { Self.vramVA + UInt64(word) * 4 }

        // Disjoint arrays, not a whole number of items: a = b + 7c; three accesses per
        // 64 bytes of each array, all in local memory, one TLB miss for the one leaf.
        let count = 50_000
        let (a, b, c) = (0, 64 << 10, 128 << 10)
        var result = try device.runKernel(.triad(a: va(a), b: va(b), c: va(c), size: UInt64(count) * 4, scalar: 7))
        stagedTriad(a: a, b: b, c: c, count: count, scalar: 7)
        #expect(result.outcome == KernelResult(bytes: UInt64(count) * 4))
        #expect(try deviceWords() == memory)
        let accessesPerArray = UInt64((count * 4 + 63) / 64)
        #expect(result.activity.accesses == 3 * accessesPerArray)
        #expect(result.activity.localBytes == 3 * UInt64(count) * 4)
        #expect(result.activity.tlbMisses == 1 && result.activity.tlbHits == 3 * accessesPerArray - 1)
        #expect(result.activity.systemBytesRead == 0 && result.activity.systemBytesWritten == 0)

        // In place (a is b): element for element.
        result = try device.runKernel(.triad(a: va(b), b: va(b), c: va(c), size: UInt64(count) * 4, scalar: 3))
        stagedTriad(a: b, b: b, c: c, count: count, scalar: 3)
        #expect(result.outcome == KernelResult(bytes: UInt64(count) * 4))
        #expect(try deviceWords() == memory)

        // a 16 words past b: an element-wise loop would read what it wrote; the sources
        // are staged instead.
        result = try device.runKernel(.triad(a: va(b + 16), b: va(b), c: va(c), size: UInt64(count) * 4, scalar: 5))
        stagedTriad(a: b + 16, b: b, c: c, count: count, scalar: 5)
        #expect(result.outcome == KernelResult(bytes: UInt64(count) * 4))
        #expect(try deviceWords() == memory)

        // c not mapped: every item looks b up (as staging it would), then faults on c, and
        // the host refuses; nothing is written.
        let unmapped: UInt64 = 0x6000_0000_0000
        result = try device.runKernel(.triad(a: va(a), b: va(b), c: unmapped, size: UInt64(count) * 4, scalar: 9))
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: unmapped, faults: 1, bytes: 0))
        #expect(result.activity.accesses == accessesPerArray && result.activity.localBytes == UInt64(count) * 4)
        #expect(try deviceWords() == memory)

        // COPY onto itself shifted by 100 bytes, both ways: memmove within each item.
        for (destination, source) in [(100, 0), (0, 100)] {
            let bytes = 200_000
            result = try device.runKernel(.copy(destination: Self.vramVA + UInt64(destination), source: Self.vramVA + UInt64(source), size: UInt64(bytes)))
            memory.withUnsafeMutableBytes { raw in
                for start in stride(from: 0, to: bytes, by: itemWords * 4) {
                    let length = min(bytes, start + itemWords * 4) - start
                    let staged = Array(raw[source + start ..< source + start + length])
                    raw[destination + start ..< destination + start + length].copyBytes(from: staged)
                }
            }
            #expect(result.outcome == KernelResult(bytes: UInt64(bytes)))
            #expect(result.activity.localBytes == 2 * UInt64(bytes))
            #expect(try deviceWords() == memory)
        }
    }

    @Test("INCREMENT on local VRAM with an atomic bind, from two threads at once, loses no update")
    func concurrentAtomics() throws {
        let bed = try SimDeviceTestbed()
        let device = bed.device
        let size = 2 * Self.mebibyte
        let offset = try device.allocateDeviceMemory(size: size)
        let zeros = [UInt8](repeating: 0, count: Int(size))
        try zeros.withUnsafeBytes { try device.copyToDeviceMemory(offset: offset, from: $0.baseAddress!, size: size) }
        try device.bind(
            address: Self.vramVA, size: size,
            pieces: [BindPiece(address: offset, linkProtocol: .localVRAM, order: 9)], access: [.writable, .atomic])

        final class Results: Sendable {
            let all = Locked<[Result<KernelResult, PluginErrno>]>([])
        }
        let results = Results()
        let rounds = 40
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0 ..< rounds {
                let outcome = Result { () throws(PluginErrno) -> KernelResult in
                    do { return try device.runKernel(.increment(destination: Self.vramVA, size: size, addend: 1)) }
                    catch { throw error as? PluginErrno ?? .ioError }
                }
                results.all.withLock { $0.append(outcome) }
            }
        }
        let all = results.all.withLock { $0 }
        #expect(all.count == 2 * rounds)
        #expect(all.allSatisfy { (try? $0.get())?.outcome == KernelResult(bytes: size) })

        var words = [UInt32](repeating: 0, count: Int(size / 4))
        try words.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: size) }
        let wrong = words.filter { $0 != UInt32(2 * rounds) }
        #expect(wrong.isEmpty, "\(wrong.count) words lost updates, e.g. \(wrong.prefix(4))")
    }

    @Test("INCREMENT through a local-VRAM bind without SVM_BIND_ATOMIC faults with .atomic")
    func atomicNeedsAtomicBind() throws {
        let bed = try SimDeviceTestbed()
        let offset = try bed.device.allocateDeviceMemory(size: 4096)
        try bed.device.bind(
            address: Self.vramVA, size: 4096,
            pieces: [BindPiece(address: offset, linkProtocol: .localVRAM, order: 0)], access: [.writable])
        let result = try bed.device.runKernel(.increment(destination: Self.vramVA + 8, size: 8, addend: 5))
        #expect(result.outcome == KernelResult(stoppedBy: .badAddress, faultAddress: Self.vramVA + 8, faults: 1, bytes: 0))
        #expect(bed.handler.faults.map(\.access) == [.atomic])
    }

    @Test("A zap waits for device accesses in flight: after it returns, no kernel touches the old pages")
    func zapWaitsForAccesses() throws {
        /// Rebinds the VRAM block on a fault, unless the test has paused it.
        final class Rebinder: DeviceFaultHandler {
            let device: any OpenDevice
            let piece: BindPiece
            /// Held across the decision and the bind, and by the test across pause and zap.
            let paused = Locked(false)
            init(device: any OpenDevice, piece: BindPiece) {
                self.device = device
                self.piece = piece
            }
            func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
                try paused.withLock { (paused) throws in
                    if paused { throw PluginErrno.tryAgain }
                    try device.bind(address: SimDeviceTests.vramVA, size: piece.size, pieces: [piece], access: [.writable, .atomic])
                }
            }
        }
        final class Progress: Sendable {
            let done = Atomic(false)
            /// Kernels that ran to the end.
            let completed = Atomic(0)
        }

        let bed = try SimDeviceTestbed()
        let device = bed.device
        let size = 2 * Self.mebibyte
        let offset = try device.allocateDeviceMemory(size: size)
        let handler = Rebinder(device: device, piece: BindPiece(address: offset, linkProtocol: .localVRAM, order: 9))
        bed.setFaultHandler(handler)

        let progress = Progress()
        let worker = Thread {
            while !progress.done.load(ordering: .relaxed) {
                let result = try? device.runKernel(.increment(destination: Self.vramVA, size: size, addend: 1))
                if result?.stoppedBy == nil {
                    progress.completed.add(1, ordering: .relaxed)
                } else {
                    usleep(200)  // paused: back off instead of spinning on the handler's lock
                }
            }
        }
        worker.start()
        defer { progress.done.store(true, ordering: .relaxed) }

        func snapshot() throws -> [UInt32] {
            var words = [UInt32](repeating: 0, count: Int(size / 4))
            try words.withUnsafeMutableBytes { try device.copyFromDeviceMemory(offset: offset, to: $0.baseAddress!, size: size) }
            return words
        }
        for round in 0 ..< 20 {
            try handler.paused.withLock { (paused) throws in
                paused = true
                try device.zap(address: Self.vramVA, size: size)
            }
            let before = try snapshot()
            usleep(2_000)
            let after = try snapshot()
            // memcmp: comparing 512 Ki words element by element is slow in debug builds.
            let same = before.withUnsafeBytes { a in after.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
            #expect(same, "a kernel wrote through a zapped translation")
            // Let the worker finish a kernel through the rebound page before the next zap,
            // however busy the machine is (no time limit but a generous one).
            let target = progress.completed.load(ordering: .relaxed) + 1
            handler.paused.withLock { $0 = false }
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while progress.completed.load(ordering: .relaxed) < target && ContinuousClock.now < deadline { usleep(500) }
            #expect(progress.completed.load(ordering: .relaxed) >= target, "round \(round): the worker ran no kernel in 60 s")
        }
        progress.done.store(true, ordering: .relaxed)
        while !worker.isFinished { usleep(1_000) }
    }

    // MARK: The raw C ops

    @Test("run_kernel through the C table: -EINVAL for what it cannot decode; a smaller result struct is not overrun")
    func rawRunKernel() throws {
        let services = PluginServices(
            pluginName: "SimDevice", options: ["memory": "4M"], clock: SimulationClock(), faultHandler: nil,
            logHandler: { _ in })
        let validated = try PluginLoader.open(PackagePaths.product("libSimDevice.so"))
        let descriptor = validated.descriptor
        let context = try PluginLoader.initialize(validated, path: "libSimDevice.so", services: services)
        defer { descriptor.pointee.fini?(context) }
        let ops = try #require(descriptor.pointee.device_ops?.pointee)
        var device: UnsafeMutableRawPointer?
        #expect(ops.open_device!(context, 0, 5, &device) == 0)
        defer { ops.close_device!(device) }
        let runKernel = try #require(ops.run_kernel)

        var kernel = svm_kernel.sized()
        var result = svm_kernel_result.sized()
        (kernel.kind, kernel.destination, kernel.size) = (99, 0x1000, 16)
        #expect(runKernel(device, &kernel, &result) == -EINVAL)
        kernel.kind = UInt32(SVM_KERNEL_FILL.rawValue)
        kernel.value = 300  // not a byte
        #expect(runKernel(device, &kernel, &result) == -EINVAL)

        // No fault handler: the host answers EFAULT. An older host's result ends before bytes.
        kernel.value = 7
        result.struct_size = UInt32(MemoryLayout<svm_kernel_result>.offset(of: \.bytes)!)
        result.bytes = 0xDEAD
        #expect(runKernel(device, &kernel, &result) == 0)
        #expect(result.status == -EFAULT)
        #expect(result.fault_address == 0x1000)
        #expect(result.faults == 1)
        #expect(result.bytes == 0xDEAD)
    }
}
