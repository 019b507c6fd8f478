import CSVMPlatform
import Dispatch
import Glibc
import SVMPluginKit
import SVMTestSupport
import Testing

@testable import SVMFramework

/// Where the CPU mirror's handler thread runs (``HandlerPlacement``): following the faulting
/// thread, it is pinned to that thread's CPU, at idle priority; left to the scheduler, it
/// keeps every CPU and its priority. Needs two CPUs (with one there is nothing to follow).
@Suite(.serialized) struct HandlerPlacementTests {
    static let page = MappedBuffer.pageSize

    /// Device memory in 4 KiB ranges: each fault migrates one page.
    static func fixture(_ placement: HandlerPlacement) throws -> SimDeviceFixture {
        try SimDeviceFixture(configuration: SVMConfiguration(chunkSizes: [4096]), handlerPlacement: placement)
    }

    /// Migrates page `index` of `buffer` to device memory, touches it from `thread` (which
    /// faults it back), and waits until the handler has handled that fault.
    static func cpuFault(_ f: SimDeviceFixture, _ buffer: MappedBuffer, page index: Int, from thread: FaultingThread) throws {
        _ = try f.deviceRead(buffer.page(index), 16)
        guard case .device = f.context.space.range(containing: buffer.page(index))?.residency.current else {
            Issue.record("page \(index) did not migrate")
            return
        }
        thread.touch(buffer.page(index))
        #expect(f.context.mirror!.waitUntilEventsHandled(deadline: .now + .seconds(10)))
    }

    /// The CPUs the handler thread may run on now.
    static func handlerCPUs(_ f: SimDeviceFixture) throws -> [Int] {
        try CPUAffinity.allowed(thread: f.context.mirror!.handlerThreadID)
    }

    @Test("Following the faulting thread: the handler is pinned to the CPU of the thread whose fault it served")
    func followsTheFaultingThread() throws {
        let allowed = try CPUAffinity.allowed()
        guard allowed.count >= 2 else { return }
        let f = try Self.fixture(.followFaultingThread)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 80 * Self.page)
        buffer.fill(seed: 1)
        // A new thread each time: its first fault is looked up at once.
        for (index, cpu) in [allowed[1], allowed[0], allowed[1]].enumerated() {
            let thread = FaultingThread(cpu: cpu)
            try Self.cpuFault(f, buffer, page: index, from: thread)
            thread.stop()
            #expect(try Self.handlerCPUs(f) == [cpu], "fault \(index) came from CPU \(cpu)")
        }
        // One thread that moves: its CPU is looked up again after lookupInterval faults.
        let thread = FaultingThread(cpu: allowed[0])
        defer { thread.stop() }
        try Self.cpuFault(f, buffer, page: 3, from: thread)
        #expect(try Self.handlerCPUs(f) == [allowed[0]])
        thread.move(to: allowed[1])
        for index in 4..<(4 + FaultingThreadFollower.lookupInterval) {
            try Self.cpuFault(f, buffer, page: index, from: thread)
        }
        #expect(try Self.handlerCPUs(f) == [allowed[1]])
        // At idle priority: what keeps the woken thread on the handler's CPU.
        #expect(sched_getscheduler(f.context.mirror!.handlerThreadID) == FaultingThreadFollower.idlePolicy)
        #expect(buffer.mismatches(seed: 1) == 0)
    }

    @Test("Left to the scheduler, the handler keeps every CPU the process has")
    func schedulerLeavesTheHandlerAlone() throws {
        let allowed = try CPUAffinity.allowed()
        guard allowed.count >= 2 else { return }
        let f = try Self.fixture(.scheduler)
        defer { f.shutdown() }
        let buffer = MappedBuffer(size: 4 * Self.page)
        buffer.fill(seed: 2)
        let thread = FaultingThread(cpu: allowed[1])
        defer { thread.stop() }
        try Self.cpuFault(f, buffer, page: 0, from: thread)
        #expect(try Self.handlerCPUs(f) == allowed)
        #expect(sched_getscheduler(f.context.mirror!.handlerThreadID) == SCHED_OTHER)
        #expect(buffer.mismatches(seed: 2) == 0)
    }
}

/// A thread pinned to one CPU that reads the addresses it is given, one at a time.
final class FaultingThread: Sendable {
    private enum Request { case touch(UInt64), pin(Int), stop }
    private let requests = Locked<[Request]>([])
    private let asked = DispatchSemaphore(value: 0)
    private let answered = DispatchSemaphore(value: 0)
    private let thread: TestThread
    private let stopped = Locked(false)
    /// The byte read last.
    private let lastRead = Locked<UInt8>(0)

    init(cpu: Int) {
        let (requests, asked, answered, lastRead) = (requests, asked, answered, lastRead)
        thread = TestThread {
            while true {
                asked.wait()
                let request = requests.withLock { $0.removeFirst() }
                switch request {
                case .touch(let address):
                    // Kept where the compiler sees it used: an unused load may be dropped.
                    let byte = UnsafePointer<UInt8>(bitPattern: UInt(address))!.pointee
                    lastRead.withLock { $0 = byte }
                case .pin(let cpu): precondition(svm_affinity_pin(Int32(cpu)) == 0, "cannot pin a test thread to CPU \(cpu)")
                case .stop: break
                }
                answered.signal()
                if case .stop = request { return }
            }
        }
        move(to: cpu)
    }

    /// Reads one byte at `address` on the thread; returns once it has.
    func touch(_ address: UInt64) { ask(.touch(address)) }

    /// Pins the thread to `cpu` alone.
    func move(to cpu: Int) { ask(.pin(cpu)) }

    /// Ends the thread (once; later calls do nothing).
    func stop() {
        guard !stopped.withLock({ done in defer { done = true }; return done }) else { return }
        ask(.stop)
        thread.join()
    }

    private func ask(_ request: Request) {
        requests.withLock { $0.append(request) }
        asked.signal()
        answered.wait()
    }
}
