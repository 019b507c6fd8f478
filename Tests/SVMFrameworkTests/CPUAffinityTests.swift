import Glibc
import SVMFramework
import SVMTestSupport
import Synchronization
import Testing

/// Pinning the calling thread to one CPU for a while (what `bench fault --cpu` does).
@Suite struct CPUAffinityTests {
    /// Inside, the thread and a thread it starts run on the one CPU; after, the thread has
    /// its CPUs back.
    @Test func pinningHoldsForTheBodyAndThreadsStartedInIt() throws {
        let before = try CPUAffinity.allowed()
        try #require(!before.isEmpty)
        let cpu = before.last!
        let started = Mutex<[Int]>([])
        let inside = try CPUAffinity.pinned(to: cpu) { () throws -> [Int] in
            let thread = TestThread { started.withLock { $0 = (try? CPUAffinity.allowed()) ?? [] } }
            thread.join()
            return try CPUAffinity.allowed()
        }
        #expect(inside == [cpu])
        #expect(started.withLock { $0 } == [cpu], "a thread started while pinned inherits the CPU")
        #expect(try CPUAffinity.allowed() == before)
    }

    @Test func aCPUTheProcessMayNotUseIsRefusedAndChangesNothing() throws {
        let before = try CPUAffinity.allowed()
        var ran = false
        #expect {
            try CPUAffinity.pinned(to: 100_000) { ran = true }
        } throws: { error in
            "\(error)" == "CPU 100000 is not one this process may run on (\(CPUAffinity.describe(before)))"
        }
        #expect(!ran)
        #expect(try CPUAffinity.allowed() == before)
    }

    @Test func cpuListsAreDescribedAsRanges() {
        #expect(CPUAffinity.describe([0, 1, 2, 3, 6]) == "0-3, 6")
        #expect(CPUAffinity.describe([5]) == "5")
        #expect(CPUAffinity.describe([0, 2, 3]) == "0, 2-3")
        #expect(CPUAffinity.describe([]) == "none")
    }
}
