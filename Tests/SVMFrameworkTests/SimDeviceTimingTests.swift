import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

@testable import SVMFramework

/// SimDevice's execution model: fault batches, duplicate faults, the TLB, the counters and
/// the execution time a kernel reports, and the TRIAD and GATHER kernels.
@Suite("SimDevice timing")
struct SimDeviceTimingTests {
    static let page = UInt64(MappedBuffer.pageSize)

    /// Serves faults like the testbed's handler, binding `bindBytes` (aligned) of system
    /// memory per fault, and records the batch of each fault.
    final class BatchRecorder: DeviceFaultHandler {
        let device: any OpenDevice
        let bindBytes: UInt64
        let batches = Locked<[UInt64]>([])

        init(device: any OpenDevice, bindBytes: UInt64) {
            self.device = device
            self.bindBytes = bindBytes
        }

        func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess) throws {
            try handleDeviceFault(hostDevice: hostDevice, address: address, access: access, batch: 0)
        }

        func handleDeviceFault(hostDevice: UInt64, address: UInt64, access: DeviceAccess, batch: UInt64) throws {
            batches.withLock { $0.append(batch) }
            let start = address & ~(bindBytes - 1)
            let order = UInt8((bindBytes / 4096).trailingZeroBitCount)
            try device.bind(
                address: start, size: bindBytes, pieces: [BindPiece(address: start, linkProtocol: .system, order: order)],
                access: [.writable])
        }
    }

    @Test("Faults are reported in batches of the configured size, numbered from 1 per kernel")
    func batchSize() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M", "fault-batch": "2"])
        let recorder = BatchRecorder(device: bed.device, bindBytes: Self.page)
        bed.setFaultHandler(recorder)
        let region = MappedBuffer(pages: 64)
        // 4 items of 64 KiB, 16 pages each: every pass each item moves one page and faults
        // at the next; two faults fill a batch.
        let result = try bed.device.runKernel(.fill(destination: region.address, size: 64 * Self.page, byte: 7))
        #expect(result.outcome == KernelResult(faults: 64, bytes: 64 * Self.page))
        #expect(result.activity.faultBatches == 32)
        let batches = recorder.batches.withLock { $0 }
        #expect(batches == (1...32).flatMap { [UInt64($0), UInt64($0)] })
        #expect(region.bytes(at: 0, count: region.size).allSatisfy { $0 == 7 })

        // The default batch (256) takes all four items' faults at once: 16 batches of 4.
        let wide = try SimDeviceTestbed(options: ["memory": "64M"])
        let wideRecorder = BatchRecorder(device: wide.device, bindBytes: Self.page)
        wide.setFaultHandler(wideRecorder)
        let other = MappedBuffer(pages: 64)
        let wideResult = try wide.device.runKernel(.fill(destination: other.address, size: 64 * Self.page, byte: 8))
        #expect(wideResult.activity.faultBatches == 16)
        #expect(wideRecorder.batches.withLock { $0 } == (1...16).flatMap { Array(repeating: UInt64($0), count: 4) })
    }

    @Test("A fault an earlier fault of its batch resolved is a duplicate and not reported")
    func duplicateFaults() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M"])
        // One bind covers two 64 KiB items.
        let recorder = BatchRecorder(device: bed.device, bindBytes: 128 << 10)
        bed.setFaultHandler(recorder)
        let region = MappedBuffer(size: 256 << 10)
        let result = try bed.device.runKernel(.fill(destination: region.address, size: 256 << 10, byte: 1))
        #expect(result.outcome == KernelResult(faults: 2, bytes: 256 << 10))
        #expect(result.activity.faultBatches == 1)
        #expect(recorder.batches.withLock { $0 } == [1, 1])
    }

    @Test("The TLB: one lookup per 64-byte access, a miss per leaf not cached, LRU over its entries; a zap flushes")
    func tlb() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M", "tlb-entries": "2", "walk-ns": "100"])
        bed.setFaultHandler(BatchRecorder(device: bed.device, bindBytes: Self.page))
        let region = MappedBuffer(pages: 4)
        var readBack = [UInt8](repeating: 0, count: 4 * Int(Self.page))
        func read() throws -> KernelActivity {
            try readBack.withUnsafeMutableBytes {
                try bed.device.runKernel(.read(source: region.address, size: 4 * Self.page, hostBuffer: UInt64(UInt(bitPattern: $0.baseAddress)))).activity
            }
        }
        _ = try read()  // faults everything in
        // Four 4 KiB leaves through two entries: every leaf misses again.
        var activity = try read()
        #expect(activity.accesses == 256)
        #expect(activity.tlbMisses == 4 && activity.tlbHits == 252)
        #expect(activity.systemBytesRead == 4 * Self.page && activity.localBytes == 0)
        #expect(activity.faultBatches == 0)
        // 256 accesses over 32 units at 2.1 GHz ≈ 3.8 ns, plus 4 walks of 100 ns.
        #expect(activity.busyNanoseconds == 404)

        let roomy = try SimDeviceTestbed(options: ["memory": "64M", "tlb-entries": "4"])
        roomy.setFaultHandler(BatchRecorder(device: roomy.device, bindBytes: Self.page))
        let other = MappedBuffer(pages: 4)
        let fill: DeviceKernel = .fill(destination: other.address, size: 4 * Self.page, byte: 3)
        _ = try roomy.device.runKernel(fill)
        activity = try roomy.device.runKernel(fill).activity
        #expect(activity.tlbMisses == 0 && activity.tlbHits == 256 && activity.systemBytesWritten == 4 * Self.page)
        try roomy.device.zap(address: other.page(1), size: Self.page)
        activity = try roomy.device.runKernel(fill).activity
        #expect(activity.tlbMisses == 1, "the zapped leaf was flushed and walked again")
    }

    @Test("TRIAD computes a = b + s·c with wrapping 32-bit arithmetic, through faults")
    func triad() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M", "fault-batch": "3"])
        bed.setFaultHandler(BatchRecorder(device: bed.device, bindBytes: Self.page))
        let count = 50_000  // not a multiple of a page or an item
        let region = MappedBuffer(size: 3 * 256 << 10)
        let (a, b, c) = (region.address, region.address + (256 << 10), region.address + (512 << 10))
        let words = region.base.assumingMemoryBound(to: UInt32.self)
        let (bWords, cWords) = (words + (64 << 10), words + (128 << 10))
        for index in 0..<count {
            bWords[index] = UInt32(index) &* 2_654_435_761
            cWords[index] = UInt32.max - UInt32(index)
        }
        let result = try bed.device.runKernel(.triad(a: a, b: b, c: c, size: UInt64(count) * 4, scalar: 7))
        #expect(result.stoppedBy == nil && result.bytes == UInt64(count) * 4)
        #expect((0..<count).allSatisfy { words[$0] == bWords[$0] &+ 7 &* cWords[$0] })
        #expect(words[count] == 0, "nothing past the end")
        #expect(throws: PluginErrno.invalidArgument) {
            try bed.device.runKernel(.triad(a: a + 1, b: b, c: c, size: 8, scalar: 1))
        }
    }

    @Test("GATHER reads table[index[i]]; an index outside the table's mapping is a device fault error at its address")
    func gather() throws {
        let bed = try SimDeviceTestbed(options: ["memory": "64M"])
        bed.handler.serve(0 ..< .max, writable: true)
        let table = MappedBuffer(size: 64 << 10)
        let lists = MappedBuffer(size: 64 << 10)
        let tableWords = table.base.assumingMemoryBound(to: UInt32.self)
        for index in 0..<(16 << 10) { tableWords[index] = UInt32(index) * 3 + 1 }
        let indices = lists.base.assumingMemoryBound(to: UInt32.self)
        let out = indices + 4096
        var random = SeededRandom(seed: 5)
        for index in 0..<3000 { indices[index] = UInt32(random.next() % (16 << 10)) }
        let result = try bed.device.runKernel(.gather(
            destination: lists.address + 4096 * 4, indices: lists.address, table: table.address, size: 3000 * 4))
        #expect(result.stoppedBy == nil && result.bytes == 3000 * 4)
        #expect((0..<3000).allSatisfy { out[$0] == tableWords[Int(indices[$0])] })
        // Each element is its own access.
        #expect(result.activity.accesses >= 3000)

        // An index past the table: an address the host does not serve.
        bed.handler.withdraw(0 ..< .max)
        bed.handler.serve(table.range, writable: false)
        bed.handler.serve(lists.range, writable: true)
        indices[5] = 1 << 20
        let stopped = try bed.device.runKernel(.gather(
            destination: lists.address + 4096 * 4, indices: lists.address, table: table.address, size: 8 * 4))
        #expect(stopped.stoppedBy == .badAddress)
        #expect(stopped.faultAddress == table.address + (4 << 20))
    }

    @Test("Timing options are checked: a bad value fails plugin init with the key and what is expected")
    func badOptions() throws {
        for (key, value) in [("fault-batch", "0"), ("tlb-entries", "many"), ("clock", "-1"), ("memory-bandwidth", "inf")] {
            do {
                _ = try SimDeviceTestbed(options: ["memory": "64M", key: value])
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect("\(error)".contains(key) && "\(error)".contains(value), "\(error)")
            }
        }
    }
}
