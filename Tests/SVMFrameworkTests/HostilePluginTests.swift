import Foundation
import Glibc
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

/// The plugin ABI is a trust boundary: plugins built by the test that break its rules, one
/// way each, are refused with one line or load and have their ops' results refused, while
/// the host lives on and loads the good plugin beside them. The whole load runs in a child
/// process: a crash fails this test, not the suite.
@Suite("Hostile plugins") struct HostilePluginTests {
    static let source = PackagePaths.fixture("HostilePlugins/hostile_device.c")

    /// What one hostile build must come to.
    enum Outcome: Codable {
        /// Refused at load, the one-line reason containing this.
        case refused(String)
        /// Loaded; asking for its devices fails with a problem containing this.
        case problem(String)
        /// Loaded, and its devices are described.
        case works
    }

    struct Case: Codable, CustomTestStringConvertible {
        let file: String
        let defines: [String]
        let outcome: Outcome
        var testDescription: String { file }
    }

    static let statuses: [(String, String)] = [
        ("INT32_MIN", "-2147483648"), ("INT32_MAX", "2147483647"), ("-12345", "-12345"),
    ]

    static let cases: [Case] = {
        var cases: [Case] = []
        for (index, (value, shown)) in statuses.enumerated() {
            let undocumented = "undocumented status \(shown) (taken as EIO)"
            cases.append(Case(file: "libinit\(index).so", defines: ["HOSTILE_NAME=\"Init\(index)\"", "HOSTILE_INIT_STATUS=\(value)"],
                              outcome: .refused("init failed with \(undocumented)")))
            for op in ["DEVICE_COUNT", "DEVICE_INFO", "OPEN_DEVICE", "PAGEMAP_INFO"] {
                let name = op.lowercased().replacingOccurrences(of: "_", with: "")
                // device_info, open_device and pagemap_info fail per device: the report
                // names the problem of the device instead.
                cases.append(Case(file: "lib\(name)\(index).so", defines: ["HOSTILE_NAME=\"\(name)\(index)\"", "HOSTILE_\(op)_STATUS=\(value)"],
                                  outcome: .problem(undocumented)))
            }
        }
        cases += [
            Case(file: "libhugecount.so", defines: ["HOSTILE_NAME=\"HugeCount\"", "HOSTILE_DEVICE_COUNT=UINT32_MAX"],
                 outcome: .problem("device_count returned 4294967295 devices; at most 256")),
            Case(file: "libnewlinename.so", defines: ["HOSTILE_NAME=\"bad\\nname\""],
                 outcome: .refused("the plugin name 'bad\\nname' has characters outside")),
            Case(file: "liblongname.so", defines: ["HOSTILE_NAME=\"\(String(repeating: "n", count: 200))\""],
                 outcome: .refused("the plugin name is longer than 63 bytes")),
            Case(file: "libescapeversion.so", defines: ["HOSTILE_NAME=\"EscapeVersion\"", "HOSTILE_VERSION=\"1.0\\x1b[2J\\n2\""], outcome: .works),
            Case(file: "liblognewlines.so", defines: ["HOSTILE_NAME=\"LogNewlines\"", "HOSTILE_LOG_NEWLINES"], outcome: .works),
            Case(file: "libloghuge.so", defines: ["HOSTILE_NAME=\"LogHuge\"", "HOSTILE_LOG_HUGE"], outcome: .works),
            Case(file: "libpageend.so", defines: ["HOSTILE_NAME=\"PageEnd\"", "HOSTILE_PAGE_END_TABLES"], outcome: .works),
            Case(file: "libbadprivate.so", defines: ["HOSTILE_NAME=\"BadPrivate\"", "HOSTILE_BAD_PRIVATE_MEMORY"], outcome: .works),
            Case(file: "liblinkname.so", defines: ["HOSTILE_NAME=\"LinkName\"", "HOSTILE_INTERCONNECT"], outcome: .works),
            Case(file: "liblinkprotocol.so", defines: ["HOSTILE_NAME=\"LinkProtocol\"", "HOSTILE_INTERCONNECT", "HOSTILE_LINK_PROTOCOL=99"],
                 outcome: .problem("link_info returned protocol 99, which this host does not know")),
            Case(file: "libentrydata.so", defines: ["HOSTILE_ENTRY_IS_DATA"], outcome: .refused("the entry symbol 'svm_plugin_entry' is not a function")),
        ]
        return cases
    }()

    @Test func everyHostilePluginIsRefusedOrContained() async throws {
        let folder = try TemporaryDirectory()
        for hostile in Self.cases {
            try CPluginCompiler.compile(Self.source, defines: hostile.defines, output: folder.file(hostile.file))
        }
        try CPluginCompiler.compile(output: folder.file("libexample.so"))
        // A real plugin cut at 4 KiB, a FIFO and a folder named like plugins.
        let whole = try #require(FileManager.default.contents(atPath: PackagePaths.product("libExampleCPlugin.so")))
        #expect(FileManager.default.createFile(atPath: folder.file("libtruncated.so"), contents: whole.prefix(4096)))
        #expect(mkfifo(folder.file("libfifo.so"), 0o644) == 0)
        #expect(mkdir(folder.file("libfolder.so"), 0o755) == 0)
        let path = folder.path
        let cases = Self.cases
        await #expect(processExitsWith: .success) { [path = path as String, cases = cases as [Case]] in
            alarm(60)
            let log = LogCollector()
            let host = makeHost(builtins: false, paths: [path], log: log)
            #expect(host.plugin(named: "ExampleC") != nil, "the good plugin loads beside the hostile ones")
            for failure in host.failures {
                #expect(!"\(failure)".contains("\n"), "one line: \(failure)")
            }
            func refusal(_ file: String) -> String? {
                host.failures.first { $0.path.hasSuffix("/" + file) }.map { "\($0)" }
            }
            #expect(refusal("libtruncated.so")?.contains("truncated") == true, "\(String(describing: refusal("libtruncated.so")))")
            #expect(refusal("libfifo.so")?.contains("a FIFO, not a plugin file") == true)
            #expect(refusal("libfolder.so")?.contains("a directory, not a plugin file") == true)
            // A FIFO named on its own is refused the same way, at once.
            let fifoOnly = makeHost(builtins: false, paths: [path + "/libfifo.so"])
            #expect(fifoOnly.failures.map(\.explanation) == ["not a loadable shared object (a FIFO, not a plugin file)"])
            for hostile in cases {
                let name = hostile.defines.first { $0.hasPrefix("HOSTILE_NAME=") }.map { String($0.dropFirst(14).dropLast()) }
                let plugin = host.plugins.first { name == $0.name }
                switch hostile.outcome {
                case .refused(let reason):
                    #expect(plugin == nil, "\(hostile.file) loaded")
                    let found = refusal(hostile.file)
                    #expect(found?.contains(reason) == true, "\(hostile.file): \(String(describing: found))")
                case .problem(let problem):
                    guard let plugin else { Issue.record("\(hostile.file) was refused: \(String(describing: refusal(hostile.file)))"); continue }
                    let report = PluginReport(plugin, detailed: true)
                    let problems = [report.problem].compactMap { $0 } + (report.devices ?? []).compactMap(\.problem)
                    #expect(problems.contains { $0.contains(problem) }, "\(hostile.file): \(problems)")
                    #expect(problems.allSatisfy { !$0.contains("\n") })
                case .works:
                    guard let plugin else { Issue.record("\(hostile.file) was refused: \(String(describing: refusal(hostile.file)))"); continue }
                    let report = PluginReport(plugin, detailed: true)
                    #expect(report.problem == nil, "\(hostile.file): \(String(describing: report.problem))")
                    for text in [plugin.version] + (report.devices ?? []).map(\.info.name) + [report.link?.name].compactMap({ $0 }) {
                        #expect(!text.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(hostile.file): \(text)")
                    }
                }
            }
            #expect(host.plugin(named: "EscapeVersion")?.version == "1.0\\u{1B}[2J\\n2")
            // A link name with no NUL is read no further than its buffer, its escapes shown.
            let link = try host.plugin(named: "LinkName").map { try #require(PluginReport($0, detailed: true).link) }
            #expect(link?.name.hasPrefix("link\\n\\u{1B}[2J") == true && link?.name.contains("…") == true, "\(String(describing: link))")
            let lines = log.all.filter { $0.plugin == "LogNewlines" || $0.plugin == "LogHuge" }.map(\.message)
            #expect(lines.count == 2)
            #expect(lines.allSatisfy { !$0.unicodeScalars.contains { $0.properties.generalCategory == .control } })
            #expect(lines.contains("first line\\nsecond line\\r\\u{1B}[31mred\\u{1B}[0m\\ttab\\u{7F}"))
            #expect(lines.contains { $0.hasSuffix("… (cut at 1024 bytes)") && $0.utf8.count < 1100 })
            // Each bad private-memory declaration was refused with one error line naming it.
            let refusals = log.all.filter { $0.plugin == "BadPrivate" && $0.level == .error }.map(\.message)
            #expect(refusals.count == 6 && refusals.allSatisfy { $0.hasSuffix("refused with EINVAL") }, "\(refusals)")
            #expect(refusals.filter { $0.contains("not all mapped") }.count == 1, "\(refusals)")
            // The page-end tables were read only up to their struct_size: the 1.1 ops absent.
            let pageEnd = try #require(host.plugin(named: "PageEnd")?.device)
            let device = try pageEnd.openDevice(at: 0, hostDevice: 1)
            defer { device.close() }
            #expect(throws: PluginErrno.notSupported) { try device.allocateDeviceMemory(size: 4096) }
        }
    }
}
