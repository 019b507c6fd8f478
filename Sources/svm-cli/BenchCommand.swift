import ArgumentParser
import Foundation
import SVMFramework
import SVMPluginKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print numbers (medians and ratios measured in one run).",
        subcommands: [Fault.self, Fork.self, Simulation.self])

    struct Fork: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What fork() costs with an SVM context: device-resident data comes home first.",
            discussion: """
                The median time from fork() to the parent's waitpid of a child that exits at
                once: with no context (a bare fork), with a context whose device holds nothing,
                and with 2 MiB and 64 MiB device-resident (a fork brings them home before the
                address space is copied, so the child gets the data). The bringing home is also
                shown against its floor, a bare UFFDIO_MOVE of the same bytes in 2 MiB chunks,
                measured in the same run. Times in microseconds.
                """)

        @OptionGroup var plugins: PluginOptionsGroup

        @Option(help: "The device plugin.")
        var device = "SimDevice"

        @Option(parsing: .unconditional, help: "Forks timed per case (1 to 1000).", transform: NumberArgument.integer(1...1000))
        var repetitions = 16

        @Flag(help: "Print the report as JSON.")
        var json = false


        func run() throws {
            let host = try plugins.makeHost(withDevicePlugin: device)
            let report: ForkBenchmark.Report
            do {
                report = try ForkBenchmark(repetitions: repetitions).run(host: host, plugin: device)
            } catch {
                throw CLIFailure("benchmark failed: \(error)")
            }
            if json {
                print(try JSONOutput.encode(report))
                return
            }
            func us(_ ns: Int) -> String { String(format: "%.1f", Double(ns) / 1000) }
            print("device \(report.device), \(report.repetitions) forks per case; times in microseconds (medians)")
            print("fork with no context: \(us(report.bareForkNs)) us; with a context, nothing device-resident: \(us(report.emptyContextForkNs)) us")
            for resident in report.resident {
                print("\(ByteCount.format(resident.bytes)) device-resident: \(us(resident.forkNs)) us (\(String(format: "%.1f", resident.toBareFork))x a bare fork); "
                    + "bringing it home \(us(resident.forkNs - report.emptyContextForkNs)) us = \(String(format: "%.1f", resident.homeToMoveFloor))x the move floor (\(us(resident.moveFloorNs)) us)")
            }
        }
    }

    struct Fault: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Device-fault migration and CPU-fault migrate-back, against memcpy and a bare UFFDIO_MOVE.",
            discussion: """
                For 4 KiB, 64 KiB and 2 MiB chunks: the median service time of a device fault
                that migrates the chunk to device memory, against a memcpy of the same bytes
                (the difference is the framework's overhead; COLD-MEMCPY copies bytes that are
                not in the CPU caches, as the migrated data is not), and the median time of a CPU
                read that faults the chunk back, against a memcpy into freshly mapped memory.
                MOVE-FLOOR is the median of a bare UFFDIO_MOVE of the chunk between two areas
                registered with one userfaultfd (source populated, destination empty), timed
                like the faults; each fault is also shown as a multiple of it. A CPU fault is
                also shown against a bare userfaultfd round trip of the same chunk (a thread
                touches a missing page, a handler thread moves the chunk in): the floor of any
                CPU fault userfaultfd serves, thread switches included (cpuFaultFloorNs).
                Floors and faults alternate in blocks of 8 (8 bare moves, then 8 device faults,
                and so on), so that a drift of a shared machine's speed meets both. Their pages
                have the same history: the move floor's chunks make their untimed round trip
                alongside the faults' warm-up, chunk by chunk, and the round-trip floor moves
                on the chunks the move floor moved, as the CPU faults move back those the device
                faults moved (a 2 MiB chunk moved again at once moves 20-40% faster than one
                last touched long ago).
                Then the time to fault in 2 MiB as one fault against 512 faults of 4 KiB: the
                median over repetitions (--comparisons), each on 2 MiB of its own, in one
                context per side (a context's first faults pay once for set-up that later
                faults share), the two sides taking turns in blocks of 8 repetitions, and
                a 2 MiB migration from one device's memory to another's (SimDevice runs with
                two devices on P2PFabric's default fabric): directly over their peer path, and
                through system memory, each against the move floor.
                Times are in nanoseconds. For reference, the xe kernel driver reports 158 us of
                CPU time for a 2 MiB fault with migration and 14 us for 64 KiB.
                --chunk 2M --comparisons 0 measures one size alone (for a profiler); the JSON
                then has 0 for the comparison it skipped.
                --cpu N runs every thread of the measurement on CPU N alone. On a virtual
                machine, waking a sleeping thread on another CPU costs an interrupt to a halted
                virtual CPU (50-100 us on 2-core VMs, against about 5 us on one CPU), and a CPU
                fault is two such wake-ups (to the handler thread and back): pinned, the CPU
                fault shows what the framework adds to a move, apart from the machine's
                wake-ups. The JSON's "cpu" says which CPU, or is absent.
                --handler-placement follow-faulting-thread leaves the threads where the
                scheduler puts them but pins each fault handler (the mirror's and the bare
                round trip's) to the CPU of the thread whose fault it served last, so that
                both wake-ups stay on one CPU, as a program can ask of its context
                (SVMContext's handlerPlacement). The JSON's "handlerPlacement" says which.
                """)

        @OptionGroup var plugins: PluginOptionsGroup

        @Option(help: "The device plugin to fault on.")
        var device = "SimDevice"

        @Option(parsing: .unconditional, help: "Faults measured per chunk size (1 to 4096).", transform: NumberArgument.integer(1...4096))
        var iterations = 64

        @Option(name: .customLong("chunk"), help: ArgumentHelp(
            "Measure only this chunk size (4K, 64K or 2M); repeat for several. Default: all three.",
            valueName: "size"))
        var chunks: [String] = []

        @Option(
            parsing: .unconditional, help: "Repetitions of the one-2-MiB-fault against 512-4-KiB-faults comparison (0 to 1000; 0 skips it).",
            transform: NumberArgument.integer(0...1000))
        var comparisons = 16

        @Option(
            parsing: .unconditional, help: ArgumentHelp(
                "Run every thread on this CPU alone (see the discussion). Default: wherever the scheduler puts them.",
                valueName: "cpu"),
            transform: NumberArgument.integer(0...Int(Int32.max)))
        var cpu: Int?

        @Option(name: .customLong("handler-placement"), help: ArgumentHelp(
            "Where the CPU fault handler runs, in the contexts and in the bare round trip: scheduler (the default) or follow-faulting-thread (pinned to the CPU of the thread whose fault it served; see the discussion).",
            valueName: "placement"))
        var handlerPlacement = HandlerPlacement.scheduler.rawValue

        @Flag(help: "Print the report as JSON.")
        var json = false

        func validate() throws {
            _ = try chunkSizes()
            guard HandlerPlacement(rawValue: handlerPlacement) != nil else {
                throw ValidationError("--handler-placement '\(handlerPlacement)' is not scheduler or follow-faulting-thread")
            }
            if let cpu {
                let allowed: [Int]
                do { allowed = try CPUAffinity.allowed() } catch { throw ValidationError("\(error)") }
                guard allowed.contains(cpu) else {
                    throw ValidationError("--cpu \(cpu) is not a CPU this process may run on (\(CPUAffinity.describe(allowed)))")
                }
            }
        }

        /// The `--chunk` sizes in bytes, in the order given; all three when none is given.
        private func chunkSizes() throws -> [UInt64] {
            let measurable = FaultBenchmark(iterations: 1).chunkSizes
            guard !chunks.isEmpty else { return measurable }
            return try chunks.map { text in
                guard let size = ByteCount.parse(text), measurable.contains(size) else {
                    throw ValidationError("--chunk '\(text)' is not one of 4K, 64K, 2M")
                }
                return size
            }
        }

        func run() throws {
            // Two devices, for the device-to-device migration; their memory stays lazily backed.
            let host = try plugins.makeHost(withDevicePlugin: device, defaults: device == "SimDevice" ? ["SimDevice": ["devices": "2"]] : [:])
            var benchmark = FaultBenchmark(iterations: iterations, comparisonRepetitions: comparisons)
            benchmark.chunkSizes = try chunkSizes()
            benchmark.cpu = cpu
            benchmark.handlerPlacement = HandlerPlacement(rawValue: handlerPlacement) ?? .scheduler
            let report: FaultBenchmark.Report
            do {
                report = try benchmark.run(host: host, plugin: device)
            } catch {
                throw CLIFailure("benchmark failed: \(error)")
            }
            if json {
                print(try JSONOutput.encode(report))
            } else {
                printText(report)
            }
        }

        private func printText(_ report: FaultBenchmark.Report) {
            func us(_ ns: Int) -> String { String(format: "%.1f", Double(ns) / 1000) }
            let pinned = (report.cpu.map { ", every thread on CPU \($0)" } ?? "")
                + (report.handlerPlacement == .scheduler ? "" : ", fault handlers \(report.handlerPlacement.rawValue)")
            print("device \(report.device), \(report.iterations) faults per chunk size\(pinned); times in microseconds (medians)")
            print("CHUNK    DEVICE-FAULT  MEMCPY  OVERHEAD  COLD-MEMCPY  OVERHEAD-COLD  CPU-FAULT  MEMCPY-FRESH  RATIO  MOVE-FLOOR")
            for chunk in report.chunks {
                print([Self.name(chunk).padding(toLength: 7, withPad: " ", startingAt: 0),
                       us(chunk.deviceFaultNs).leftPadded(12), us(chunk.memcpyNs).leftPadded(7),
                       us(chunk.deviceFaultOverheadNs).leftPadded(9), us(chunk.memcpyColdNs).leftPadded(12),
                       us(chunk.deviceFaultOverheadColdNs).leftPadded(14), us(chunk.cpuFaultNs).leftPadded(10),
                       us(chunk.memcpyFreshNs).leftPadded(13), String(format: "%.2f", chunk.cpuFaultToFreshMemcpy).leftPadded(6),
                       us(chunk.moveFloorNs).leftPadded(11)]
                    .joined(separator: " "))
            }
            for chunk in report.chunks {
                let name = Self.name(chunk)
                print("device fault \(name): \(us(chunk.deviceFaultNs)) us = \(String(format: "%.1f", chunk.deviceFaultToMoveFloor))x move floor (\(us(chunk.moveFloorNs)) us); "
                    + "CPU fault \(name): \(us(chunk.cpuFaultNs)) us = \(String(format: "%.1f", chunk.cpuFaultToMoveFloor))x move floor, "
                    + "\(String(format: "%.1f", chunk.cpuFaultToCPUFaultFloor))x a bare userfaultfd round trip (\(us(chunk.cpuFaultFloorNs)) us)")
            }
            if report.oneTwoMiBFaultNs > 0 {
                print("2 MiB as one fault: \(us(report.oneTwoMiBFaultNs)) us; as 512 faults of 4 KiB: \(us(report.fiveHundredTwelve4KiBFaultsNs)) us (\(String(format: "%.1f", report.manySmallToOneLarge))x)")
            }
            if let peer = report.deviceToDevice {
                print("2 MiB device to device (\(peer.devices.joined(separator: " → "))): directly over \(peer.peerProtocol.rawValue) \(us(peer.directNs)) us = \(String(format: "%.1f", peer.directToMoveFloor))x move floor; "
                    + "through system memory \(us(peer.throughSystemNs)) us = \(String(format: "%.1f", peer.throughSystemToMoveFloor))x move floor (\(us(peer.moveFloorNs)) us)")
            }
        }

        /// `4K`, `64K`, `2M`.
        private static func name(_ chunk: FaultBenchmark.ChunkResult) -> String {
            chunk.chunkBytes >= 1 << 20 ? "\(chunk.chunkBytes >> 20)M" : "\(chunk.chunkBytes >> 10)K"
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
