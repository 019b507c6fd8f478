import Glibc
import SVMFramework

// svm-fault-probe: a fixed, repeatable sequence of device faults on SimDevice, for counting
// the instructions a fault takes (scripts/instructions.sh runs it under callgrind; times on
// a shared machine vary by 2x, instruction counts by less than 1%).
//
// It faults `ranges` chunks of `chunk` bytes into device memory (first faults: each makes its
// range), then `rounds` times brings every chunk home and faults it again (steady faults).
// A chunk comes home through a pipe: write(2) from it makes the kernel take the CPU fault
// inside the system call, which valgrind lets the mirror's handler thread serve; a fault of
// user code would leave valgrind's own lock held and hang. Prints the statistics as one line.

/// Writes `line` to standard error (fd 2: the C `stderr` global is not concurrency-safe).
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

let usage = "usage: svm-fault-probe CHUNK RANGES ROUNDS PLUGIN-FOLDER   (CHUNK: 4096, 65536 or 2097152)"
let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 4, let chunk = Int(arguments[1]), [4096, 65536, 2 << 20].contains(chunk),
    let ranges = Int(arguments[2]), (1...4096).contains(ranges), let rounds = Int(arguments[3]), (0...100).contains(rounds)
else {
    printError(usage)
    exit(2)
}
let folder = arguments[4]

func fail(_ message: String) -> Never {
    printError("svm-fault-probe: \(message)")
    exit(1)
}

let host = PluginHost(configuration: PluginHost.Configuration(
    searchPath: .standard(commandLineEntries: [folder], includeBuiltins: false), options: [:], logHandler: { _ in }))
guard host.plugin(named: "SimDevice") != nil else { fail("no SimDevice plugin in \(folder)") }
let configuration = try SVMConfiguration(chunkSizes: chunk == 4096 ? [4096] : [UInt64(chunk), 4096], checkPagesThreshold: 0)
let context = SVMContext(configuration: configuration, host: host)
if let reason = context.mirrorUnavailableReason { fail(reason) }
let device = try context.openDevice(plugin: "SimDevice", index: 0)
let size = ranges * chunk
guard let mapping = mapAnonymousAligned(size: size, alignment: chunk) else { fail("cannot map \(size) bytes") }
let pattern: UInt8 = 0x3c
memset(mapping, Int32(pattern), size)
var pipeEnds: [Int32] = [0, 0]
guard pipe(&pipeEnds) == 0 else { fail("pipe: errno \(errno)") }

func faultAll() throws {
    for index in 0..<ranges {
        try context.handleDeviceFault(hostDevice: device.deviceID, address: UInt64(UInt(bitPattern: mapping + index * chunk)), access: .read)
    }
}

try faultAll()
for _ in 0..<rounds {
    for index in 0..<ranges {
        var byte: UInt8 = 0
        guard write(pipeEnds[1], mapping + index * chunk, 1) == 1, read(pipeEnds[0], &byte, 1) == 1 else {
            fail("bringing chunk \(index) home through the pipe: errno \(errno)")
        }
        guard byte == pattern else { fail("chunk \(index) lost its data: \(byte)") }
    }
    try faultAll()
}
let statistics = context.statistics.snapshot
print(["migrationsToDevice", "cpuFaultMigrations", "deviceFaults"].map { "\($0)=\(statistics[$0] ?? 0)" }.joined(separator: " "))
context.close(device)
context.shutdown()
munmap(mapping, size)
