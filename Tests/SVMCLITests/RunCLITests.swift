import Foundation
import SVMTestSupport
import Testing

/// End-to-end: `svm-cli run`, the default experiment and its options.
@Suite("svm-cli run")
struct RunCLITests {
    @Test("With no arguments: the default experiment runs, verifies and explains itself; no progress when piped")
    func defaultExperiment() throws {
        let result = try ProcessRunner.svmCLI(["run"])
        #expect(result.status == 0, "\(result.standardError)")
        let output = result.standardOutput
        for expected in [
            "Experiment   stream: STREAM triad", "Topology     sim0 with 256 MiB of device memory, PCIe Gen4 x16",
            "Result       verified: all 8388608 values right", "Simulated time  ", "Device sim0", "device faults",
            "fault service    p50", "migrations       to device 48 (96 MiB)", "Link PCIe Gen4 x16 via switch0-sim:0 + root-switch0, host↔sim0", "Wall clock",
            "Data path    192 MiB moved without copying (UFFDIO_MOVE), 0 B copied through staging memory",
            "Mirror       CPU faults through ",
        ] {
            #expect(output.contains(expected), "missing '\(expected)' in:\n\(output)")
        }
        if getuid() == 0 {
            // Root: the mirror serves kernel-mode faults, and nothing is limited.
            #expect(output.contains("Mirror       CPU faults through userfaultfd(): user-mode and kernel-mode faults"), "\(output)")
            #expect(!output.contains("Limits"), "\(output)")
        }
        #expect(!result.standardError.contains("running…"), "progress goes to terminals only")
    }

    @Test("--kernel-faults never: the mirror as an unprivileged process has it, and the limit is said once")
    func userModeOnlyMirror() throws {
        let result = try ProcessRunner.svmCLI(["run", "--size", "4M", "--kernel-faults", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        let output = result.standardOutput
        for expected in [
            "Mirror       CPU faults through userfaultfd(UFFD_USER_MODE_ONLY): user-mode faults only",
            "Limits       the mirror serves user-mode faults only (kernel-mode faults were not asked for): read(2)/write(2) on device-resident memory fail with EFAULT",
            "Result       verified",
        ] {
            #expect(output.contains(expected), "missing '\(expected)' in:\n\(output)")
        }
        #expect(output.components(separatedBy: "user-mode faults only").count == 3, "once in Mirror, once in Limits")
        let json = try ProcessRunner.svmCLI(["run", "--size", "4M", "--kernel-faults", "never", "--json"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["mirror"] as? String == "userfaultfd(UFFD_USER_MODE_ONLY)")
        #expect((object["limitations"] as? [String])?.count == 1)
        #expect((object["svm"] as? [String: Int])?["mirrorUserModeOnly"] == 1)
        let bad = try ProcessRunner.svmCLI(["run", "--kernel-faults", "sometimes"])
        #expect(bad.status == 2)
        #expect(bad.standardError.contains("--kernel-faults 'sometimes' is not when-permitted or never"), "\(bad.standardError)")
    }

    @Test("--handler-placement follow-faulting-thread: said in the report, the same simulated result; a bad placement is refused")
    func handlerPlacement() throws {
        let result = try ProcessRunner.svmCLI(["run", "--size", "4M", "--handler-placement", "follow-faulting-thread"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("the handler follows the faulting thread's CPU, at idle priority"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("Result       verified"))
        let plain = try ProcessRunner.svmCLI(["run", "--size", "4M"])
        #expect(!plain.standardOutput.contains("follows the faulting thread"))
        let json = try ProcessRunner.svmCLI(["run", "--size", "4M", "--handler-placement", "follow-faulting-thread", "--json"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect((object["configuration"] as? [String: Any])?["handlerPlacement"] as? String == "follow-faulting-thread")
        let bad = try ProcessRunner.svmCLI(["run", "--handler-placement", "nearby"])
        #expect(bad.status == 2)
        #expect(bad.standardError.contains("--handler-placement 'nearby' is not scheduler or follow-faulting-thread"), "\(bad.standardError)")
    }

    @Test("SimDevice.zero-copy=off: the same experiment on the copy path, the same simulated result")
    func copyPath() throws {
        let zeroCopy = try ProcessRunner.svmCLI(["run", "--json"])
        let copying = try ProcessRunner.svmCLI(["run", "--json", "--plugin-option", "SimDevice.zero-copy=off"])
        #expect(zeroCopy.status == 0 && copying.status == 0, "\(zeroCopy.standardError)\(copying.standardError)")
        func simulated(_ text: String) throws -> (NSDictionary, [String: Int]) {
            var object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            let svm = try #require(object["svm"] as? [String: Int])
            object["wallClock"] = nil
            object["svm"] = nil
            object["configuration"] = nil  // it echoes the option
            return (object as NSDictionary, svm)
        }
        let (zeroCopyReport, zeroCopyCounters) = try simulated(zeroCopy.standardOutput)
        let (copyReport, copyCounters) = try simulated(copying.standardOutput)
        // How bytes travel on the host changes nothing the simulation sees.
        #expect(zeroCopyReport == copyReport)
        #expect(zeroCopyCounters["bytesMoved"] == 192 << 20 && zeroCopyCounters["bytesCopied"] == 0)
        #expect(copyCounters["bytesMoved"] == 0 && copyCounters["bytesCopied"] == 192 << 20)
        let text = try ProcessRunner.svmCLI(["run", "--plugin-option", "SimDevice.zero-copy=off"])
        #expect(text.standardOutput.contains("Data path    0 B moved without copying (UFFDIO_MOVE), 192 MiB copied through staging memory"), "\(text.standardOutput)")
    }

    @Test("--json with the same --seed twice: identical but for the wall clock; the trace opens as trace-event JSON")
    func jsonAndTrace() throws {
        let directory = try TemporaryDirectory()
        let arguments = ["run", "--workload", "gather", "--size", "4M", "--seed", "9", "--json"]
        let first = try ProcessRunner.svmCLI(arguments + ["--trace", directory.path + "/trace.json"])
        let second = try ProcessRunner.svmCLI(arguments)
        #expect(first.status == 0 && second.status == 0, "\(first.standardError)\(second.standardError)")
        func withoutWallClock(_ text: String) throws -> NSDictionary {
            var object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(object["verified"] as? Bool == true)
            #expect(object["wallClock"] != nil)
            object["wallClock"] = nil
            return object as NSDictionary
        }
        #expect(try withoutWallClock(first.standardOutput) == withoutWallClock(second.standardOutput))
        let trace = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory.path + "/trace.json")))
        let events = try #require((trace as? [String: Any])?["traceEvents"] as? [[String: Any]])
        #expect(events.contains { $0["cat"] as? String == "migration" })
    }

    @Test("An injected device reset: the report names the loss, exit status 1; the trace marks the reset")
    func deviceReset() throws {
        let directory = try TemporaryDirectory()
        let result = try ProcessRunner.svmCLI([
            "run", "--workload", "ping-pong", "--size", "4M", "--plugin-option", "SimDevice.reset-after-kernel=2",
            "--trace", directory.path + "/trace.json",
        ])
        #expect(result.status == 1, "\(result.standardError)")
        for expected in [
            "Result       NOT verified: 1048576 values lost (not read: see Losses), 0 of 1048576 checked values wrong",
            "Losses       1 device reset(s); 2 range(s), 4 MiB of data lost", "2 kernel(s) not run",
        ] {
            #expect(result.standardOutput.contains(expected), "missing '\(expected)' in:\n\(result.standardOutput)")
        }
        #expect(result.standardError.contains("reset after kernel 2"))
        let trace = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory.path + "/trace.json")))
        let events = try #require((trace as? [String: Any])?["traceEvents"] as? [[String: Any]])
        #expect(events.contains { $0["name"] as? String == "device reset" && $0["ph"] as? String == "i" && $0["ts"] is Double })
    }

    @Test("Bad options are usage errors (exit 2) naming the option; an unwritable trace is a failure (exit 1)")
    func badOptions() throws {
        for (arguments, named) in [
            (["--workload", "bogus"], "--workload 'bogus'"), (["--size", "lots"], "--size 'lots'"),
            (["--device-memory", "3M"], "device memory"), (["--link", "gen9"], "--link 'gen9'"),
            (["--copy-engines", "0"], "--copy-engines"), (["--plugin-option", "SimDevice.memory=1G"], "--device-memory"),
            // Negative numbers are values, not options; overflow, extremes and ranges are named.
            (["--size", "-1"], "--size '-1' is not a size"), (["--device-memory", "-2M"], "--device-memory '-2M' is not a size"),
            (["--seed", "-1"], "The value '-1' is invalid for '--seed <seed>': expected an integer from 0 to 18446744073709551615"),
            (["--seed", "99999999999999999999999"], "invalid for '--seed <seed>': expected an integer from 0 to"),
            (["--copy-engines", "-1"], "The value '-1' is invalid for '--copy-engines <copy-engines>': expected an integer from 1 to 64"),
            (["--copy-engines", "65"], "expected an integer from 1 to 64"),
            (["--fault-latency", "-5"], "The value '-5' is invalid for '--fault-latency <us>': expected a number of us from 0 to 1000000"),
            (["--fault-latency", "1e309"], "invalid for '--fault-latency <us>'"), (["--fault-latency", "nan"], "invalid for '--fault-latency <us>'"),
            (["--size", "99999999999999999999T"], "--size '99999999999999999999T' is not a size"),
            (["--devices", "0"], "The value '0' is invalid for '--devices <n>': expected an integer from 1 to 8"),
            (["--devices", "9"], "expected an integer from 1 to 8"), (["--devices", "-2"], "The value '-2' is invalid for '--devices <n>'"),
            (["--interconnect", "ring"], "--interconnect 'ring' is not fabric, pcie or none"),
            (["--peer-copy-engine", "both"], "--peer-copy-engine 'both' is not source or destination"),
            (["--policy", "everywhere"], "--policy 'everywhere' is not migrate, system or peer"),
            (["--plugin-option", "SimDevice.devices=2"], "give the number of devices with --devices"),
            (["--plugin-option", "P2PFabric.topology=pcie"], "give the interconnect with --interconnect"),
            (["--iova-aperture", "4097"], "--iova-aperture '4097' is not a size such as 1G (a multiple of 4K), or 0"),
            (["--iova-aperture", "99999999T"], "--iova-aperture '99999999T' is not a size"),
        ] {
            let result = try ProcessRunner.svmCLI(["run"] + arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.standardError.contains(named), "\(arguments): \(result.standardError)")
            #expect(!result.standardError.contains("Missing value"), "\(arguments): \(result.standardError)")
        }
        let result = try ProcessRunner.svmCLI(["run", "--size", "1M", "--trace", "/nonexistent/dir/trace.json"])
        #expect(result.status == 1)
        #expect(result.standardError.contains("cannot write the trace to /nonexistent/dir/trace.json"))
    }

    @Test("--devices 4 --interconnect fabric: every device runs, the buffer passes from peer to peer, the report shows each device, owner group and peer path")
    func fourDevicesOnAFabric() throws {
        let result = try ProcessRunner.svmCLI(["run", "--workload", "ping-pong", "--size", "4M", "--devices", "4", "--interconnect", "fabric", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(report["verified"] as? Bool == true)
        let devices = try #require(report["devices"] as? [[String: Any]])
        #expect(devices.map { $0["name"] as? String } == ["sim0", "sim1", "sim2", "sim3"])
        #expect(devices.allSatisfy { ($0["kernels"] as? Int ?? 0) > 0 })
        #expect(report["ownerGroups"] as? [[String]] == [["sim0", "sim1", "sim2", "sim3"]])
        let peers = try #require(report["peerLinks"] as? [[String: Any]])
        #expect(peers.count == 12)
        // Four rounds: sim0 → sim1 → sim2 → sim3 each round, 4 MiB (two ranges) at a time.
        func bytes(_ peer: [String: Any]) -> Int { (peer["carried"] as? [String: Any])?["bytes"] as? Int ?? -1 }
        let used = peers.filter { bytes($0) > 0 }.map { "\($0["from"] as? String ?? "?")→\($0["to"] as? String ?? "?")" }
        #expect(used == ["sim0→sim1", "sim1→sim2", "sim2→sim3"], "\(used)")
        #expect(peers.allSatisfy { bytes($0) == 0 || bytes($0) == 16 << 20 })
        #expect((report["svm"] as? [String: Int])?["peerMigrations"] == 3 * 4 * 2)
        let text = try ProcessRunner.svmCLI(["run", "--workload", "ping-pong", "--size", "4M", "--devices", "4"])
        #expect(text.standardOutput.contains("Owner groups {sim0, sim1, sim2, sim3}"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("Peer sim0→sim1 fabric over sim:0-sim:1: 16 MiB in 8 transfer(s)"), "\(text.standardOutput)")
    }

    @Test("--iova-aperture 0: bindings of system memory map page by page, and the report says so with the driver time it took")
    func noIOMMU() throws {
        let batched = try ProcessRunner.svmCLI(["run", "--size", "4M", "--policy", "system"])
        #expect(batched.status == 0, "\(batched.standardError)")
        #expect(batched.standardOutput.contains("DMA mapping      3 IOVA allocation(s), 3 link(s), 3 sync(s); 0 failed allocation(s), 0 page(s) mapped one by one"), "\(batched.standardOutput)")
        let perPage = try ProcessRunner.svmCLI(["run", "--size", "4M", "--policy", "system", "--iova-aperture", "0"])
        #expect(perPage.status == 0, "\(perPage.standardError)")
        #expect(perPage.standardOutput.contains("3 failed allocation(s), 1536 page(s) mapped one by one"), "\(perPage.standardOutput)")
    }

    @Test("A bad SimDevice timing option stops the run with the plugin's message")
    func badPluginOption() throws {
        let result = try ProcessRunner.svmCLI(["run", "--size", "1M", "--plugin-option", "SimDevice.fault-batch=0"])
        #expect(result.status == 1)
        #expect(result.standardError.contains("fault-batch"), "\(result.standardError)")
    }
}
