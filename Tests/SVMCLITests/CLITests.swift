import Foundation
import SVMTestSupport
import Testing

/// End-to-end: the built svm-cli binary, its output and its exit codes.
@Suite("svm-cli")
struct CLITests {
    struct ListJSON: Decodable {
        struct Plugin: Decodable {
            let name: String
            let kind: String
            let version: String
            let abi: String
            let path: String
        }
        struct Failure: Decodable {
            let path: String
            let reason: String
        }
        let plugins: [Plugin]
        let failures: [Failure]
    }

    @Test("--version prints the version and the plugin ABI, exit 0")
    func version() throws {
        let result = try ProcessRunner.svmCLI(["--version"])
        #expect(result.status == 0)
        #expect(result.standardOutput.hasPrefix("svm-cli 0.1.0 (plugin ABI 1."))
    }

    @Test("plugins list --json lists SimDevice, XeDevice and P2PFabric with their .so paths")
    func listJSON() throws {
        let result = try ProcessRunner.svmCLI(["plugins", "list", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let list = try JSONDecoder().decode(ListJSON.self, from: Data(result.standardOutput.utf8))
        #expect(list.failures.isEmpty)
        #expect(list.plugins.map(\.name) == ["SimDevice", "XeDevice", "P2PFabric"])
        #expect(list.plugins.map(\.kind) == ["device", "device", "interconnect"])
        for plugin in list.plugins {
            #expect(plugin.path.hasSuffix("/lib\(plugin.name).so"))
            #expect(FileManager.default.fileExists(atPath: plugin.path))
            #expect(plugin.abi == "1.7", "the built-in plugins are built against the current header")
            #expect(!plugin.version.isEmpty)
        }
    }

    @Test("plugins list prints a table with a header")
    func listTable() throws {
        let result = try ProcessRunner.svmCLI(["plugins", "list"])
        #expect(result.status == 0)
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        #expect(lines.count == 4)
        #expect(lines[1].contains("SimDevice") && lines[1].contains("libSimDevice.so"))
    }

    @Test("A refused plugin is a warning naming the file; --strict makes it exit 1")
    func refusedPlugin() throws {
        let folder = try TemporaryDirectory()
        try "garbage".write(toFile: folder.file("libbroken.so"), atomically: true, encoding: .utf8)
        let relaxed = try ProcessRunner.svmCLI(["plugins", "list", "--json"], environment: ["SVM_PLUGIN_PATH": folder.path])
        #expect(relaxed.status == 0)
        #expect(relaxed.standardError.contains("warning: \(folder.file("libbroken.so")): not a loadable shared object"))
        let list = try JSONDecoder().decode(ListJSON.self, from: Data(relaxed.standardOutput.utf8))
        #expect(list.plugins.count == 3)
        #expect(list.failures.map(\.path) == [folder.file("libbroken.so")])
        let strict = try ProcessRunner.svmCLI(["plugins", "list", "--strict", "--plugin-path", folder.path])
        #expect(strict.status == 1)
    }

    @Test("plugins info shows devices with their pagemaps, honouring --plugin-option")
    func info() throws {
        let result = try ProcessRunner.svmCLI(["plugins", "info", "SimDevice", "--plugin-option", "SimDevice.devices=2", "--plugin-option", "SimDevice.memory=2G"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("devices: 2"))
        #expect(result.standardOutput.contains("[1] sim1: simulated, memory 2 GiB"))
        #expect(result.standardOutput.contains("pagemap: 2 GiB, min page 4 KiB"))
    }

    @Test("The C example plugin is listed and inspected like any other")
    func cPlugin() throws {
        let result = try ProcessRunner.svmCLI(["plugins", "info", "ExampleC", "--json", "--no-builtin-plugins", "--plugin-path", PackagePaths.product("libExampleCPlugin.so")])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        let devices = object?["devices"] as? [[String: Any]]
        #expect((devices?.first?["info"] as? [String: Any])?["name"] as? String == "example0")
    }

    @Test("Exit codes: 2 for bad usage, 1 for a failed operation")
    func exitCodes() throws {
        #expect(try ProcessRunner.svmCLI(["plugins", "list", "--no-such-flag"]).status == 2)
        #expect(try ProcessRunner.svmCLI(["no-such-command"]).status == 2)
        let badOption = try ProcessRunner.svmCLI(["plugins", "list", "--plugin-option", "nodot=1"])
        #expect(badOption.status == 2)
        #expect(badOption.standardError.contains("plugin.key=value"))
        let unknown = try ProcessRunner.svmCLI(["plugins", "info", "NoSuchPlugin"])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("no plugin named 'NoSuchPlugin'"))
        #expect(try ProcessRunner.svmCLI(["--help"]).status == 0)
    }
}
