import ArgumentParser
import Foundation
import SVMFramework
import SVMPluginKit

extension BenchCommand {
    /// Simulation throughput: how fast the simulator runs the stream workload, and how its
    /// wall time grows with the working set.
    struct Simulation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sim",
            abstract: "Simulation throughput: the stream workload at growing working sets.",
            discussion: """
                Runs the stream experiment (a = b + s*c, two iterations, checked on the CPU) at
                each working set, --repetitions times, with device memory 1.1x the arrays so
                nothing is evicted. A working set under 512M runs more often, up to 8 times, so
                that at least 512M are measured: every size's growth is read against the first
                size's median, and with 3 runs of 64M that was the noisiest figure of the table.
                Prints the median wall time (and the range), the simulated device accesses and
                faults per wall-clock second, and the wall time per GiB relative to the first
                size (1.0 = grows linearly; below 1 = better than linear). Build with -c release
                for real numbers; a 4G run needs about 4.5 GiB of RAM where device memory is
                the moved pages themselves (SimDevice's zero-copy memory; 4.2 GB resident at
                most, measured), more on the copy path.
                CPU FLOOR is what the CPU alone takes for the same bytes, measured in the same
                run, once after each simulation run: mmap the three arrays as the experiment
                does, initialize b and c as it does (their first touch), compute a = b + s*c
                once (a's first touch), munmap; no device, no check pass. The median of the
                runs is printed, and the simulation's median wall time as a multiple of it
                (wall/floor). The floor's own time per GiB against the first size's is printed
                too: when the machine itself slows down at a size (at 4G here, from page
                allocation and zeroing), the simulation's growth should be read against it; so
                is wall/floor against the first size's (1.0 = the simulation grows as the
                machine does).
                Before the runs at each working set the floor runs once untimed (a warm-up,
                its time printed as warm-up): on a VM the first use of more memory than
                before makes the hypervisor back it, and that first run paid for it while the
                floor after it did not (the first of three 4G runs took 7.2-11.4 s here, the
                next ones 4.1-5.1 s).
                On a VM that hands free memory back to its hypervisor (free page reporting,
                /sys/module/page_reporting) a first touch of memory freed moments before may
                fault in the host too, the more the longer it stayed free: larger working sets
                meet more of it. The table then ends with a note, and the JSON rows say the
                reporting order (freePageReportingOrder, absent when off). Here the 4G run took
                1.12-1.27x the 64M run's time per GiB with reporting on, 0.85x with it off.
                """)

        @OptionGroup var plugins: PluginOptionsGroup

        @Option(help: ArgumentHelp("Working sets, comma-separated.", valueName: "sizes"))
        var sizes = "64M,256M,1G,4G"

        @Option(
            parsing: .unconditional,
            help: "Runs per working set (at least; smaller sets run more, see above); the median wall time is reported (1 to 100).",
            transform: NumberArgument.integer(1...100))
        var repetitions = 3

        @Flag(help: "Print the results as JSON.")
        var json = false

        /// A working set smaller than this runs more often than --repetitions, so that at
        /// least this many bytes are measured (see the discussion)...
        static let minimumMeasuredBytes: UInt64 = 512 << 20
        /// ...but at most this many times: 8 runs of 64M take about a second here.
        static let maximumScaledRepetitions = 8

        /// How many times the working set of `bytes` runs.
        func repetitions(at bytes: UInt64) -> Int {
            let toMeasureEnough = Int((Self.minimumMeasuredBytes + bytes - 1) / bytes)
            return max(repetitions, min(Self.maximumScaledRepetitions, toMeasureEnough))
        }

        struct Row: Codable {
            var workingSetBytes: UInt64
            /// How many times it ran (``repetitions(at:)``).
            var repetitions: Int
            /// The median of the runs, and the fastest and slowest.
            var wallSeconds: Double
            var fastestWallSeconds: Double
            var slowestWallSeconds: Double
            var simulatedNanoseconds: UInt64
            var accesses: UInt64
            var faults: Int
            var accessesPerSecond: Double
            var faultsPerSecond: Double
            /// Wall time per byte against the first size's.
            var wallPerByteVsFirst: Double
            /// The median of the CPU floor's runs (``CPUTriadFloor``).
            var cpuFloorSeconds: Double
            /// The untimed floor run before the first run (see the discussion).
            var warmUpSeconds: Double
            /// `wallSeconds / cpuFloorSeconds`.
            var wallToCPUFloor: Double
            /// The CPU floor's time per byte against the first size's: how the machine
            /// alone grows.
            var cpuFloorPerByteVsFirst: Double
            /// `wallToCPUFloor` against the first size's: how the simulation grows against
            /// the machine.
            var wallToCPUFloorVsFirst: Double
            var verified: Bool
            /// The smallest order of free blocks the kernel hands back to the hypervisor
            /// (``FreePageReporting``), absent when it hands none back.
            var freePageReportingOrder: Int?
        }

        func workingSets() throws -> [UInt64] {
            try sizes.split(separator: ",").map { text in
                guard let bytes = ByteCount.parse(String(text)), bytes >= 1 << 20 else {
                    throw ValidationError("--sizes: '\(text)' is not a size of at least 1M")
                }
                return bytes
            }
        }

        func validate() throws {
            _ = try workingSets()
        }

        func run() throws {
            var rows: [Row] = []
            for bytes in try workingSets() {
                var configuration = ExperimentConfiguration()
                configuration.workingSetBytes = bytes
                // Room for the three arrays' whole 2 MiB windows and a tenth more: a triad
                // step needs a range of each array resident at once.
                let window: UInt64 = 2 << 20
                let arrays = 3 * ((bytes / 3 + window - 1) / window * window)
                configuration.deviceMemoryBytes = (arrays + arrays / 10 + window - 1) / window * window
                let host = try plugins.makeHost(defaults: configuration.pluginOptions)
                var reports: [ExperimentReport] = []
                var floors: [Double] = []
                let floor = CPUTriadFloor(workingSetBytes: bytes)
                let runs = repetitions(at: bytes)
                let warmUp: Double
                do {
                    warmUp = try floor.seconds()
                } catch {
                    throw CLIFailure("stream at \(ByteCount.format(bytes)): the warm-up: \(error)")
                }
                for _ in 0..<runs {
                    do {
                        reports.append(try Experiment(configuration: configuration, host: host).run())
                        floors.append(try floor.seconds())
                    } catch {
                        throw CLIFailure("stream at \(ByteCount.format(bytes)): \(error)")
                    }
                }
                let cpuFloor = floors.sorted()[floors.count / 2]
                reports.sort { $0.wallClock.seconds < $1.wallClock.seconds }
                let walls = reports.map(\.wallClock.seconds)
                let report = reports[reports.count / 2]
                let device = report.devices[0]
                let wall = report.wallClock.seconds
                let perByte = wall / Double(bytes)
                let first = rows.first.map { $0.wallSeconds / Double($0.workingSetBytes) } ?? perByte
                let floorPerByte = cpuFloor / Double(bytes)
                let firstFloor = rows.first.map { $0.cpuFloorSeconds / Double($0.workingSetBytes) } ?? floorPerByte
                let firstRatio = rows.first?.wallToCPUFloor ?? wall / cpuFloor
                rows.append(Row(
                    workingSetBytes: bytes, repetitions: runs, wallSeconds: wall, fastestWallSeconds: walls.first!, slowestWallSeconds: walls.last!,
                    simulatedNanoseconds: report.simulatedNanoseconds, accesses: device.accesses, faults: device.faults.total,
                    accessesPerSecond: report.wallClock.accessesPerSecond, faultsPerSecond: report.wallClock.faultsPerSecond,
                    wallPerByteVsFirst: perByte / first, cpuFloorSeconds: cpuFloor, warmUpSeconds: warmUp, wallToCPUFloor: wall / cpuFloor,
                    cpuFloorPerByteVsFirst: floorPerByte / firstFloor, wallToCPUFloorVsFirst: wall / cpuFloor / firstRatio,
                    verified: reports.allSatisfy(\.verified), freePageReportingOrder: FreePageReporting.reportedOrder()))
                if !json { print(Self.text(rows.last!)) }
            }
            if json {
                print(try JSONOutput.encode(rows))
            } else if let order = rows.compactMap(\.freePageReportingOrder).first {
                print(Self.reportingNote(order: order))
            }
            if rows.contains(where: { !$0.verified }) { throw CLIFailure("a run did not verify") }
        }

        static func reportingNote(order: Int) -> String {
            "note: this machine hands free memory back to its hypervisor (free page reporting, blocks of order \(order) and up): "
                + "a first touch of memory freed moments before may fault in the host too, more at larger working sets (see --help)"
        }

        static func text(_ row: Row) -> String {
            let size = ByteCount.format(row.workingSetBytes)
            return "stream \(size.padding(toLength: 8, withPad: " ", startingAt: 0)) wall \(String(format: "%7.2f", row.wallSeconds)) s "
                + "(\(String(format: "%.2f", row.fastestWallSeconds))–\(String(format: "%.2f", row.slowestWallSeconds)))  "
                + "simulated \(String(format: "%9.3f", Double(row.simulatedNanoseconds) / 1e6)) ms  "
                + "\(String(format: "%6.1f", row.accessesPerSecond / 1e6))M accesses/s  \(String(format: "%7.1f", row.faultsPerSecond)) faults/s  "
                + "wall per GiB vs first \(String(format: "%.2f", row.wallPerByteVsFirst))  "
                + "CPU floor \(String(format: "%.3f", row.cpuFloorSeconds)) s, wall/floor \(String(format: "%.1f", row.wallToCPUFloor))x, "
                + "floor per GiB vs first \(String(format: "%.2f", row.cpuFloorPerByteVsFirst)), "
                + "wall/floor vs first \(String(format: "%.2f", row.wallToCPUFloorVsFirst)) (\(row.repetitions) runs, warm-up \(String(format: "%.3f", row.warmUpSeconds)) s)"
                + (row.verified ? "" : "  NOT VERIFIED")
        }
    }
}
