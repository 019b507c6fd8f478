import ArgumentParser
import Foundation
import SVMFramework
import SVMPluginKit

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a migration experiment in simulated time (default: STREAM on one simulated GPU).",
        discussion: """
            An experiment runs a workload on a simulated GPU (SimDevice) behind a PCIe link. The
            program's memory is real and so are its page faults: device faults migrate ranges to
            device memory, CPU touches fault them back, and the bytes really move. Time is
            simulated: a deterministic discrete-event clock charges each fault batch, copy,
            transfer and kernel with the device and link models, so the same options and seed
            give the same report on every run and machine (but for the wall-clock line).

            Workloads: stream (a = b + s*c), gather (random out[i] = table[index[i]]),
            ping-pong (CPU and device take turns on one buffer), oversubscription (a working set
            1.5x device memory), stencil (out[i] = in[i-1] + in[i] + in[i+1], shards exchanging
            halos), matmul (C = A x B from one triad per row of C and column of A; every device
            reads all of B). Each checks every value on the CPU and reports "verified" only if
            all are right; otherwise the exit status is 1.

            The default topology: one SimDevice with 256 MiB of device memory, PCIe Gen4 x16
            (31.5 GB/s per direction), 45 us of driver time per fault batch (GPGPU-Sim
            UVMSmart's far-fault latency), 2 copy engines; the device models an Intel Arc A770
            (see SimDevice's options: execution-units, clock, memory-bandwidth, tlb-entries,
            walk-ns, fault-batch).

            Fault injection, with --plugin-option SimDevice.KEY=N: fail-alloc-every,
            fail-copy-every, reset-after-kernel. After a reset the values that only device
            memory held are reported lost (not verified, exit status 1), never wrong.
            """)

    @OptionGroup var plugins: PluginOptionsGroup

    @Option(help: ArgumentHelp("The workload: \(WorkloadKind.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var workload: String = WorkloadKind.stream.rawValue

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Bytes of the workload's arrays together, e.g. 64M or 1G (default: 96M; 1.5x device memory for oversubscription).",
        valueName: "size"))
    var size: String?

    @Option(name: .customLong("device-memory"), parsing: .unconditional, help: ArgumentHelp("Device memory of each simulated GPU, a multiple of 2M.", valueName: "size"))
    var deviceMemory = "256M"

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Simulated GPUs the workload splits across (1 to \(ExperimentConfiguration.maxDevices)): stream, gather and oversubscription shard their arrays, ping-pong passes its buffer from device to device, stencil shards its arrays and exchanges halos, matmul shards C's rows and every device reads all of B.",
            valueName: "n"),
        transform: NumberArgument.integer(1...ExperimentConfiguration.maxDevices))
    var devices = 1

    @Option(help: ArgumentHelp(
        "How the GPUs reach each other's memory: fabric (a fabric link between every two), pcie (PCIe peer-to-peer through one switch) or none (through system memory only).",
        valueName: "shape"))
    var interconnect = ExperimentConfiguration.InterconnectShape.fabric.rawValue

    @Option(name: .customLong("peer-copy-engine"), help: ArgumentHelp(
        "Whose copy engines move data directly between two GPUs: source (the kernel's default, source_peer_migrates) or destination.",
        valueName: "side"))
    var peerCopyEngine = TimingParameters.PeerCopyEngine.source.rawValue

    @Option(name: .customLong("iova-aperture"), parsing: .unconditional, help: ArgumentHelp(
        "Each GPU's IOVA space, through which its bindings of system memory and of peers' memory over PCIe are DMA-mapped: a size such as 1G, or 0 for no IOMMU (every binding then maps page by page). Default 128T, never the limit.",
        valueName: "size"))
    var iovaAperture: String?

    @Option(
        parsing: .unconditional, help: "The seed of every random choice (the gather's indices, initial values).",
        transform: NumberArgument.integer(0...UInt64.max))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp(
        "Where device faults put data: migrate (to device memory), system (map CPU pages in place) or peer (migrate, but map data in a peer's memory in place over the peer path).",
        valueName: "policy"))
    var policy = MigrationPolicy.migrateOnDeviceFault.rawValue

    @Option(help: ArgumentHelp("The host link: gen4 (PCIe Gen4 x16, 31.5 GB/s) or gen5 (PCIe Gen5 x16, 63 GB/s).", valueName: "link"))
    var link = "gen4"

    @Option(
        name: .customLong("fault-latency"), parsing: .unconditional,
        help: ArgumentHelp("Driver time per fault batch, in microseconds (0 to 1000000).", valueName: "us"),
        transform: NumberArgument.decimal(0...1_000_000, unit: "us"))
    var faultLatency: Double = 45

    @Option(
        name: .customLong("copy-engines"), parsing: .unconditional, help: "Copy engines of the device (1 to 64).",
        transform: NumberArgument.integer(1...64))
    var copyEngines = 2

    @Option(name: .customLong("kernel-faults"), help: ArgumentHelp(
        "Whether the CPU mirror serves the kernel's own accesses to device-resident memory (read(2), write(2), mlock): when-permitted (needs CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or /dev/userfaultfd; else the report says so) or never (what an unprivileged process gets).",
        valueName: "mode"))
    var kernelFaults = KernelFaults.whenPermitted.rawValue

    @Option(name: .customLong("handler-placement"), help: ArgumentHelp(
        "Where the CPU fault handler thread runs: scheduler (the default) or follow-faulting-thread (pinned to the CPU of the thread whose fault it served, at idle priority: CPU faults about 2x faster on a VM with costly cross-CPU wake-ups, but a thread keeping that CPU busy delays the handler).",
        valueName: "placement"))
    var handlerPlacement = HandlerPlacement.scheduler.rawValue

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: ArgumentHelp(
        "Write a Chrome/Perfetto trace of faults, migrations and kernels to this file (open it at ui.perfetto.dev).",
        valueName: "file"))
    var trace: String?

    @Flag(help: "No progress line, even on a terminal.")
    var quiet = false

    func validate() throws {
        _ = try experimentConfiguration()
    }

    /// The experiment the options describe.
    func experimentConfiguration() throws -> ExperimentConfiguration {
        var configuration = ExperimentConfiguration()
        guard let kind = WorkloadKind(rawValue: workload) else {
            throw ValidationError("--workload '\(workload)' is not one of \(WorkloadKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        configuration.workload = kind
        if let size {
            guard let bytes = ByteCount.parse(size) else { throw ValidationError("--size '\(size)' is not a size such as 64M or 1G") }
            configuration.workingSetBytes = bytes
        }
        guard let memory = ByteCount.parse(deviceMemory) else {
            throw ValidationError("--device-memory '\(deviceMemory)' is not a size such as 256M or 1G")
        }
        configuration.deviceMemoryBytes = memory
        if let iovaAperture {
            guard let bytes = ByteCount.parse(iovaAperture), bytes % 4096 == 0 else {
                throw ValidationError("--iova-aperture '\(iovaAperture)' is not a size such as 1G (a multiple of 4K), or 0")
            }
            configuration.iovaApertureBytes = bytes
        }
        configuration.devices = devices
        guard let shape = ExperimentConfiguration.InterconnectShape(rawValue: interconnect) else {
            throw ValidationError("--interconnect '\(interconnect)' is not fabric, pcie or none")
        }
        configuration.interconnect = shape
        guard let engine = TimingParameters.PeerCopyEngine(rawValue: peerCopyEngine) else {
            throw ValidationError("--peer-copy-engine '\(peerCopyEngine)' is not source or destination")
        }
        configuration.timing.peerCopyEngine = engine
        configuration.seed = seed
        guard let policy = MigrationPolicy(rawValue: policy) else {
            throw ValidationError("--policy '\(policy)' is not migrate, system or peer")
        }
        configuration.policy = policy
        guard let kernelFaults = KernelFaults(rawValue: kernelFaults) else {
            throw ValidationError("--kernel-faults '\(kernelFaults)' is not when-permitted or never")
        }
        configuration.kernelFaults = kernelFaults
        guard let placement = HandlerPlacement(rawValue: handlerPlacement) else {
            throw ValidationError("--handler-placement '\(handlerPlacement)' is not scheduler or follow-faulting-thread")
        }
        configuration.handlerPlacement = placement
        switch link {
        case "gen4": configuration.timing.link = .pcieGen4x16
        case "gen5": configuration.timing.link = .pcieGen5x16
        default: throw ValidationError("--link '\(link)' is not gen4 or gen5")
        }
        configuration.timing.faultServiceNanoseconds = UInt64((faultLatency * 1000).rounded())
        configuration.timing.copyEngines = copyEngines
        let options = try plugins.parsedOptions()
        if options["SimDevice"]?["memory"] != nil {
            throw ValidationError("give the device memory with --device-memory, not --plugin-option SimDevice.memory")
        }
        if options["SimDevice"]?["devices"] != nil {
            throw ValidationError("give the number of devices with --devices, not --plugin-option SimDevice.devices")
        }
        if options["P2PFabric"]?["topology"] != nil || options["P2PFabric"]?["devices"] != nil {
            throw ValidationError("give the interconnect with --interconnect and the devices with --devices, not --plugin-option P2PFabric.topology or .devices")
        }
        configuration.deviceOptions = options["SimDevice"] ?? [:]
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }

    func run() throws {
        let configuration = try experimentConfiguration()
        let host = try plugins.makeHost(defaults: configuration.pluginOptions)
        guard host.plugin(named: configuration.devicePlugin) != nil else {
            throw CLIFailure("the \(configuration.devicePlugin) plugin is not loaded (see the warnings above); `svm-cli plugins list` shows what is")
        }
        let recorder = trace == nil ? nil : TraceRecorder()
        let progress = ProgressLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        let report: ExperimentReport
        do {
            report = try Experiment(configuration: configuration, host: host).run(trace: recorder) { progress.show($0) }
        } catch {
            progress.finish()
            throw CLIFailure("\(error)")
        }
        progress.finish()
        if let trace, let recorder {
            do {
                try recorder.json().write(to: URL(fileURLWithPath: trace))
            } catch {
                throw CLIFailure("cannot write the trace to \(trace): \(error)")
            }
        }
        if json {
            print(try JSONOutput.encode(report))
        } else {
            print(ExperimentReportText(report, traceFile: trace).text)
        }
        if !report.verified { throw ExitCode.failure }
    }
}
