import CSVMPlatform
import Foundation
import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Synchronization
import Testing

/// Random sequences of CPU and device accesses, migrations, evictions, discards, unmaps and
/// remaps against a shadow copy of the memory: no byte may be lost or stale.
@Suite(.serialized) struct ModelBasedSVMTests {
    /// A region that mixes chunk sizes: 64 KiB-aligned but not 2 MiB-aligned, so its ends
    /// get 64 KiB and 4 KiB ranges and its middle 2 MiB ones.
    static let regionSize = (6 << 20) + (192 << 10)

    /// What the INCREMENT kernel does, on the shadow: each little-endian `UInt32` of
    /// `words` grows by `addend`, wrapping.
    static func increment(_ shadow: inout [UInt8], _ words: Range<Int>, by addend: UInt32) {
        for word in stride(from: words.lowerBound, to: words.upperBound, by: 4) {
            var value = shadow[word..<word + 4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
            value &+= addend
            for byte in 0..<4 { shadow[word + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
        }
    }

    /// The region under test and its shadow.
    final class Model {
        let buffer: MappedBuffer
        let base: UnsafeMutableRawPointer
        var shadow: [UInt8]
        var random: SeededRandom
        let f: SimDeviceFixture

        init(seed: UInt64, f: SimDeviceFixture) {
            buffer = MappedBuffer(size: ModelBasedSVMTests.regionSize + (2 << 20), alignment: 2 << 20)
            base = buffer.base + (64 << 10)
            shadow = [UInt8](repeating: 0, count: ModelBasedSVMTests.regionSize)
            random = SeededRandom(seed: seed)
            self.f = f
        }

        var address: UInt64 { UInt64(UInt(bitPattern: base)) }

        func span(maximum: Int = 96 << 10, alignment: Int = 1) -> Range<Int> {
            let length = max(alignment, Int.random(in: 1...maximum, using: &random) / alignment * alignment)
            let start = Int.random(in: 0...(shadow.count - length), using: &random) / alignment * alignment
            return start..<start + length
        }

        func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }

        func step(_ index: Int) throws {
            let operation = Int.random(in: 0..<11, using: &random)
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            switch operation {
            case 0:  // CPU write
                let span = span()
                let data = randomBytes(span.count)
                for (i, value) in zip(span, data) { bytes[i] = value }
                shadow.replaceSubrange(span, with: data)
            case 1:  // CPU read
                let span = span()
                let wrong = span.first { bytes[$0] != shadow[$0] }
                #expect(wrong == nil, "step \(index): CPU read at \(wrong ?? 0): \(bytes[wrong ?? 0]) != \(shadow[wrong ?? 0])")
            case 2:  // device write
                let span = span()
                let data = randomBytes(span.count)
                #expect(try f.deviceWrite(address + UInt64(span.lowerBound), data).stoppedBy == nil)
                shadow.replaceSubrange(span, with: data)
            case 3:  // device read
                let span = span()
                let (data, result) = try f.deviceRead(address + UInt64(span.lowerBound), span.count)
                #expect(result.stoppedBy == nil)
                let wrong = data.indices.first { data[$0] != shadow[span.lowerBound + $0] }
                #expect(wrong == nil, "step \(index): device read at \(span.lowerBound + (wrong ?? 0))")
            case 4:  // device fill
                let span = span()
                let value = UInt8.random(in: 0...255, using: &random)
                try f.run(.fill(destination: address + UInt64(span.lowerBound), size: UInt64(span.count), byte: value))
                shadow.replaceSubrange(span, with: repeatElement(value, count: span.count))
            case 5:  // device copy between disjoint spans
                let source = span(maximum: 48 << 10)
                var destination = span(maximum: 48 << 10)
                destination = destination.lowerBound..<destination.lowerBound + source.count
                guard destination.upperBound <= shadow.count, !source.overlaps(destination) else { return }
                try f.run(.copy(destination: address + UInt64(destination.lowerBound), source: address + UInt64(source.lowerBound), size: UInt64(source.count)))
                shadow.replaceSubrange(destination, with: shadow[source])
            case 6:  // device atomic increment
                let span = span(maximum: 16 << 10, alignment: 4)
                let addend = UInt32.random(in: 1...1000, using: &random)
                try f.run(.increment(destination: address + UInt64(span.lowerBound), size: UInt64(span.count), addend: addend))
                ModelBasedSVMTests.increment(&shadow, span, by: addend)
            case 7:  // the device gives its memory back
                f.context.release(f.device)
            case 8:  // discard pages
                let span = span(alignment: 4096)
                madvise(base + span.lowerBound, span.count, MADV_DONTNEED)
                shadow.replaceSubrange(span, with: repeatElement(0, count: span.count))
            case 9:  // unmap and map fresh memory at the same place
                // In one call: between a munmap and an mmap another test's mapping could
                // take the hole, and MAP_FIXED would then replace it.
                let span = span(alignment: 4096)
                let again = mmap(base + span.lowerBound, span.count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                #expect(again == base + span.lowerBound)
                shadow.replaceSubrange(span, with: repeatElement(0, count: span.count))
            default:  // mremap pages away and back (within one VMA: mremap moves one)
                // Away with MREMAP_DONTUNMAP: the old range stays mapped (empty), so no other
                // test's mapping can take its place before the pages come back.
                var span = span(alignment: 4096)
                guard let area = ProcessAddressSpace().area(containing: address + UInt64(span.lowerBound)) else { return }
                let end = min(span.upperBound, Int(UInt64(area.end) - address))
                span = span.lowerBound..<end
                let scratch = MappedBuffer(size: span.count, alignment: 4096)
                var moved: UnsafeMutableRawPointer?
                #expect(svm_mremap_dontunmap(base + span.lowerBound, UInt64(span.count), scratch.base, &moved) == 0)
                #expect(svm_mremap_fixed(scratch.base, UInt64(span.count), UInt64(span.count), base + span.lowerBound, &moved) == 0)
                scratch.forget()
            }
        }

        func checkAll(_ label: String) {
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            let wrong = shadow.indices.first { bytes[$0] != shadow[$0] }
            #expect(wrong == nil, "\(label): byte \(wrong ?? 0) is \(bytes[wrong ?? 0]), expected \(shadow[wrong ?? 0])")
        }
    }

    /// Both ways data travels: moved (zero-copy, SimDevice's default) and copied (through
    /// staging memory and the plugin's copy ops).
    static let paths = [MigrationPath.zeroCopy, .copy]

    @Test(arguments: paths, 1...8)
    func randomSequenceMatchesShadow(path: MigrationPath, seed: Int) throws {
        // Little device memory, so that migrations evict.
        let f = try SimDeviceFixture(memory: "4M", options: path.options)
        defer { f.shutdown() }
        let model = Model(seed: UInt64(seed), f: f)
        for step in 0..<150 { try model.step(step) }
        model.checkAll("\(path) seed \(seed)")
        path.checkUsed(f, exclusively: true)
    }

    /// The same with a child forked midway that lives to the end: every page present at the
    /// fork is shared with it, so no move takes it until a write gives this process its own
    /// copy. Found zero-copy data left in device memory when shared pages refused to move
    /// back, and device atomics retrying forever on shared pages. In a process of its own (an
    /// exit test): the fork shares every page of the process, and tests running alongside
    /// would see their migrations refused.
    @Test(arguments: paths, 1...4)
    func randomSequenceWithForkedChild(path: MigrationPath, seed: Int) async {
        await #expect(processExitsWith: .success) { [path, seed] in
            let f = try SimDeviceFixture(memory: "4M", options: path.options)
            defer { f.shutdown() }
            let model = Model(seed: UInt64(seed), f: f)
            var child: pid_t = -1
            defer {
                if child > 0 {
                    kill(child, SIGKILL)
                    var status: Int32 = 0
                    waitpid(child, &status, 0)
                }
            }
            for step in 0..<150 {
                if step == 40 {
                    child = fork()
                    // The child only holds the pages until it is killed.
                    if child == 0 { while true { pause() } }
                    #expect(child > 0)
                }
                try model.step(step)
            }
            model.checkAll("\(path) seed \(seed), forked at step 40")
        }
    }

    /// Threads each own interleaved 64 KiB slices of the same 2 MiB ranges and access them
    /// from the CPU and the device at once: migrations started by one thread's device access
    /// move the others' bytes while they use them. On a failure the steps the SVM layer took
    /// are written to /tmp/svm-trace-<path>-<discards>-<seed>.txt (see ``SVMContext/trace``).
    @Test(arguments: paths, 1...4)
    func concurrentThreadsOnSharedRanges(path: MigrationPath, seed: Int) throws {
        try runConcurrentThreads(path: path, seed: seed, discards: false)
    }

    /// The same with `madvise(MADV_DONTNEED)` among the operations. It found, on a loaded
    /// machine, discarded bytes coming back (a migration moved pages the kernel had not
    /// dropped yet) and a kernel livelock in `UFFDIO_MOVE` with source holes.
    @Test(arguments: paths, 1...4)
    func concurrentThreadsWithDiscards(path: MigrationPath, seed: Int) throws {
        try runConcurrentThreads(path: path, seed: seed, discards: true)
    }

    /// The same with the CPU fault handler following the faulting thread: pinned to one CPU
    /// at idle priority, it serves three threads on two CPUs, each keeping the handler's CPU
    /// busy for a while.
    @Test(arguments: 1...2)
    func concurrentThreadsWithTheHandlerFollowing(seed: Int) throws {
        try runConcurrentThreads(path: .zeroCopy, seed: seed, discards: true, placement: .followFaultingThread)
    }

    private func runConcurrentThreads(path: MigrationPath, seed: Int, discards: Bool, placement: HandlerPlacement = .scheduler) throws {
        let f = try SimDeviceFixture(memory: "8M", options: path.options, handlerPlacement: placement)
        defer { f.shutdown() }
        // Device accesses of another thread pin pages for a moment: a move may fall back.
        defer { path.checkUsed(f, exclusively: false) }
        let threads = 3
        let slice = 64 << 10
        let buffer = MappedBuffer(size: 4 << 20)
        let failures = Locked<[String]>([])
        let wrongAddresses = Locked<[UInt64]>([])
        f.context.trace.enable()
        let workers = (0..<threads).map { thread in
            TestThread {
                var random = SeededRandom(seed: UInt64(seed * 100 + thread))
                let slices = stride(from: thread * slice, to: buffer.size, by: threads * slice).map { $0..<$0 + slice }
                var shadow = [UInt8](repeating: 0, count: buffer.size)
                var history: [String] = []
                for step in 0..<120 {
                    let piece = slices[Int.random(in: 0..<slices.count, using: &random)]
                    let length = Int.random(in: 1...slice, using: &random)
                    let span = piece.lowerBound..<piece.lowerBound + length
                    do {
                        var operation = Int.random(in: 0..<6, using: &random)
                        if operation == 5 && !discards { operation = 1 }
                        history.append("step \(step) op \(operation) span \(span)")
                        switch operation {
                        case 0:
                            let value = UInt8.random(in: 1...255, using: &random)
                            for i in span { buffer.bytes[i] = value }
                            shadow.replaceSubrange(span, with: repeatElement(value, count: length))
                        case 1:
                            if let wrong = span.first(where: { buffer.bytes[$0] != shadow[$0] }) {
                                failures.withLock { $0.append("thread \(thread) step \(step): CPU read \(describe(wrong, in: span))") }
                            }
                        case 2:
                            let value = UInt8.random(in: 1...255, using: &random)
                            let result = try f.device.run(.fill(destination: buffer.address + UInt64(span.lowerBound), size: UInt64(length), byte: value))
                            if let error = result.stoppedBy { failures.withLock { $0.append("thread \(thread) step \(step): fill stopped: \(error) at \(result.faultAddress - buffer.address)") } }
                            shadow.replaceSubrange(span, with: repeatElement(value, count: length))
                        case 3:
                            let (data, result) = try f.deviceRead(buffer.address + UInt64(span.lowerBound), length)
                            if result.stoppedBy != nil || data != Array(shadow[span]) {
                                let wrong = data.indices.first { data[$0] != shadow[span.lowerBound + $0] } ?? 0
                                wrongAddresses.withLock { $0.append(buffer.address + UInt64(span.lowerBound + wrong)) }
                                failures.withLock { $0.append("thread \(thread) step \(step): device read (\(String(describing: result.stoppedBy))) at \(span.lowerBound + wrong): \(data[wrong]) != \(shadow[span.lowerBound + wrong])") }
                            }
                        case 4:
                            let words = span.lowerBound..<span.lowerBound + max(4, length / 4 * 4)
                            let result = try f.device.run(.increment(destination: buffer.address + UInt64(words.lowerBound), size: UInt64(words.count), addend: 1))
                            if let error = result.stoppedBy { failures.withLock { $0.append("thread \(thread) step \(step): increment stopped: \(error)") } }
                            ModelBasedSVMTests.increment(&shadow, words, by: 1)
                        default:
                            let pages = (span.lowerBound / 4096 * 4096)..<min(piece.upperBound, (span.upperBound + 4095) / 4096 * 4096)
                            madvise(buffer.base + pages.lowerBound, pages.count, MADV_DONTNEED)
                            shadow.replaceSubrange(pages, with: repeatElement(0, count: pages.count))
                        }
                    } catch {
                        failures.withLock { $0.append("thread \(thread) step \(step): \(error)") }
                    }
                }
                for piece in slices {
                    if let wrong = piece.first(where: { buffer.bytes[$0] != shadow[$0] }) {
                        failures.withLock { $0.append("thread \(thread) final check \(describe(wrong, in: piece))") }
                    }
                }
                /// The first wrong byte of `span` with its value and the shadow's, and how
                /// many bytes of `span` are wrong.
                func describe(_ wrong: Int, in span: Range<Int>) -> String {
                    let count = span.count { buffer.bytes[$0] != shadow[$0] }
                    wrongAddresses.withLock { $0.append(buffer.address + UInt64(wrong)) }
                    let touching = history.filter { $0.contains("span \(span.lowerBound)..<") }.suffix(6).joined(separator: "; ")
                    return "at \(wrong) (range \(wrong >> 21), slice offset \(wrong % slice)): \(buffer.bytes[wrong]) != \(shadow[wrong]), \(count) of \(span.count) bytes wrong; history: \(touching)"
                }
            }
        }
        let watchdog = Watchdog(seconds: 120, "concurrent threads (seed \(seed), discards \(discards)) deadlocked or livelocked")
        for worker in workers { worker.join() }
        watchdog.cancel()
        let wrong = failures.withLock { $0 }
        #expect(wrong == [])
        if let address = wrongAddresses.withLock({ $0.first }) {
            let file = "/tmp/svm-trace-\(path)-\(discards)-\(seed).txt"
            let steps = f.context.trace.allSteps.map(\.description).joined(separator: "\n")
            _ = FileManager.default.createFile(atPath: file, contents: Data("address \(address); buffer \(buffer.address)\n\(wrong.joined(separator: "\n"))\n\(steps)\n".utf8))
        }
    }

    /// The CPU and the device fault on the same range at once, over and over: no deadlock,
    /// no livelock, the right data.
    @Test func cpuAndDeviceFaultOnTheSameRangeAtOnce() throws {
        let f = try SimDeviceFixture()
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 2 << 20)
        let rounds = 300
        let watchdog = Watchdog(seconds: 120, "CPU and device faulting on one range deadlocked or livelocked")
        let device = TestThread {
            for _ in 0..<rounds {
                _ = try? f.device.run(.increment(destination: buffer.address, size: 4096, addend: 1))
            }
        }
        let cpu = TestThread {
            for round in 1...rounds {
                buffer.bytes[1 << 20] = UInt8(truncatingIfNeeded: round)
                precondition(buffer.bytes[1 << 20] == UInt8(truncatingIfNeeded: round))
            }
        }
        device.join()
        cpu.join()
        watchdog.cancel()
        let words = buffer.base.assumingMemoryBound(to: UInt32.self)
        #expect((0..<1024).allSatisfy { words[$0] == UInt32(rounds) })
        #expect(buffer.bytes[1 << 20] == UInt8(truncatingIfNeeded: rounds))
        #expect(f.count("migrationsToDevice") >= 1)
    }
}
