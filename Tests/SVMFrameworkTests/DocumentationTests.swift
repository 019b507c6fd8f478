import Foundation
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

@Suite("Documentation")
struct DocumentationTests {
    /// The fenced code blocks of a Markdown file, by language.
    func codeBlocks(in path: String, language: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```\(language)" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    let article = PackagePaths.root + "/Sources/SVMFramework/SVMFramework.docc/WritingAPlugin.md"

    @Test("The article's C plugin is the example plugin the tests build and load, verbatim")
    func cExampleIsVerbatim() throws {
        let source = try String(contentsOfFile: CPluginCompiler.exampleSource, encoding: .utf8)
        #expect(try codeBlocks(in: article, language: "c").contains(source))
    }

    @Test("The article's Swift plugin is the ExampleSwiftPlugin product, verbatim")
    func swiftExampleIsVerbatim() throws {
        let source = try String(
            contentsOfFile: PackagePaths.fixture("ExampleSwiftPlugin/ExampleSwiftPlugin.swift"), encoding: .utf8)
        #expect(try codeBlocks(in: article, language: "swift").contains(source))
    }

    @Test("The article's Swift plugin loads and works like the C one")
    func swiftExampleWorks() throws {
        let log = LogCollector()
        let clock = SimulationClock(start: 42)
        let host = makeHost(
            builtins: false, paths: [PackagePaths.product("libExampleSwiftPlugin.so")],
            options: ["ExampleSwift": ["memory": "2G"]], log: log, clock: clock)
        let driver = try #require(host.plugin(named: "ExampleSwift")?.device)
        #expect(try driver.deviceInfo(at: 0).memoryBytes == 2 << 30)
        let device = try driver.openDevice(at: 0, hostDevice: 0)
        #expect(try device.pagemapInfo().capacityBytes == 2 << 30)
        device.close()
        #expect(log.all.map(\.message) == ["ready at simulated time 42 ns"])

        let bad = makeHost(
            builtins: false, paths: [PackagePaths.product("libExampleSwiftPlugin.so")],
            options: ["ExampleSwift": ["memory": "lots"]])
        #expect(bad.failures.map(\.reason) == [
            .initFailed(.invalidArgument, detail: "option ExampleSwift.memory=lots is invalid: expected a size, e.g. 2G")
        ])
    }
}
