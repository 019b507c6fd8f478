import Foundation
import SVMTestSupport
import Testing

/// `svm-fault-probe`, the fixed fault sequence scripts/instructions.sh counts under callgrind:
/// it must do the faults and migrations it says, or the counts divide the wrong work.
@Suite struct FaultProbeTests {
    @Test func itFaultsEveryRangeInAndBringsItHomeEachRound() throws {
        let probe = PackagePaths.product("svm-fault-probe")
        let plugins = (probe as NSString).deletingLastPathComponent
        for (chunk, ranges, rounds) in [(4096, 8, 2), (2 << 20, 3, 1), (65536, 5, 0)] {
            let result = try ProcessRunner.run(probe, ["\(chunk)", "\(ranges)", "\(rounds)", plugins])
            #expect(result.status == 0, "\(result.standardError)")
            // Every fault migrates: the first ones and one per range and round; every round
            // brings every range home with a CPU fault (taken by the kernel in write(2)).
            let faults = ranges * (rounds + 1)
            #expect(result.standardOutput == "migrationsToDevice=\(faults) cpuFaultMigrations=\(ranges * rounds) deviceFaults=\(faults)\n")
        }
    }

    @Test func badArgumentsGetTheUsageAndStatus2() throws {
        let probe = PackagePaths.product("svm-fault-probe")
        for arguments in [[], ["3", "8", "2", "."], ["4096", "0", "1", "."], ["4096", "8", "101", "."]] {
            let result = try ProcessRunner.run(probe, arguments)
            #expect(result.status == 2 && result.standardError.hasPrefix("usage: svm-fault-probe CHUNK RANGES ROUNDS PLUGIN-FOLDER"))
        }
        let missing = try ProcessRunner.run(probe, ["4096", "8", "1", "/nonexistent"])
        #expect(missing.status == 1 && missing.standardError == "svm-fault-probe: no SimDevice plugin in /nonexistent\n")
    }
}
