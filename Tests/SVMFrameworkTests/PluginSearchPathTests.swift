import Foundation
import SVMFramework
import SVMPluginKit
import SVMTestSupport
import Testing

@Suite("Plugin search path")
struct PluginSearchPathTests {
    @Test("Order: built-ins, then SVM_PLUGIN_PATH, then --plugin-path; folders by name")
    func order() throws {
        let a = try TemporaryDirectory()
        let b = try TemporaryDirectory()
        for name in ["libz.so", "liba.so", "libv.so.1", "readme.txt", "liba.so.bak"] {
            _ = FileManager.default.createFile(atPath: a.file(name), contents: Data())
        }
        _ = FileManager.default.createFile(atPath: b.file("single.so"), contents: Data())
        let path = PluginSearchPath.standard(
            commandLineEntries: [b.file("single.so")], includeBuiltins: true,
            environment: ["SVM_PLUGIN_PATH": a.path + "::", "SVM_BUILTIN_PLUGIN_DIR": PackagePaths.buildProducts])
        let (files, failures) = path.candidates()
        #expect(failures.isEmpty)
        #expect(files.map(\.path) == PluginSearchPath.builtinPluginFiles.map { PackagePaths.product($0) }
            + [a.file("liba.so"), a.file("libv.so.1"), a.file("libz.so"), b.file("single.so")])
        #expect(files.map(\.origin) == [.builtin, .builtin, .builtin, .environment, .environment, .environment, .commandLine])
    }

    @Test("A built-in folder without the plugins says to build them")
    func missingBuiltins() throws {
        let empty = try TemporaryDirectory()
        let (files, failures) = PluginSearchPath(builtinDirectory: empty.path).candidates()
        #expect(files.isEmpty)
        #expect(failures.count == 3)
        #expect(failures.allSatisfy { $0.explanation.contains("swift build") })
    }

    @Test("Without built-ins nothing is loaded but what the path names")
    func noBuiltins() {
        let path = PluginSearchPath.standard(includeBuiltins: false, environment: [:])
        #expect(path.builtinDirectory == nil)
        #expect(path.candidates().files.isEmpty)
    }
}

@Suite("Byte counts")
struct ByteCountTests {
    @Test func parse() {
        #expect(ByteCount.parse("4096") == 4096)
        #expect(ByteCount.parse("64K") == 65536)
        #expect(ByteCount.parse(" 512MiB ") == 512 << 20)
        #expect(ByteCount.parse("16g") == 16 << 30)
        #expect(ByteCount.parse("1.5G") == nil)
        #expect(ByteCount.parse("G") == nil)
        #expect(ByteCount.parse("99999999999T") == nil)
    }

    @Test func format() {
        #expect(ByteCount.format(64 << 10) == "64 KiB")
        #expect(ByteCount.format(3 << 30) == "3 GiB")
        #expect(ByteCount.format(1000) == "1000 B")
        #expect(ByteCount.format(0) == "0 B")
    }
}
