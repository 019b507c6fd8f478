import ArgumentParser
import Foundation
import SVMFramework
import SVMPluginKit

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List and inspect the device and interconnect plugins.",
        subcommands: [List.self, Info.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the loaded plugins: name, kind, version, ABI version and path.",
            discussion: "Files that were refused are named on standard error with the reason.")

        @OptionGroup var plugins: PluginOptionsGroup

        @Flag(help: "Print JSON: {\"plugins\": [...], \"failures\": [...]}.")
        var json = false

        @Flag(help: "Exit with status 1 when any plugin file was refused.")
        var strict = false

        func run() throws {
            let host = try plugins.makeHost()
            let reports = host.plugins.map { PluginReport($0, detailed: false) }
            if json {
                let failures = host.failures.map { FailureJSON(path: $0.path, reason: $0.explanation) }
                print(try JSONOutput.encode(ListJSON(plugins: reports, failures: failures)))
            } else {
                printTable(reports)
            }
            if strict && !host.failures.isEmpty {
                throw CLIFailure("\(host.failures.count) plugin file(s) were refused (--strict)")
            }
        }

        private func printTable(_ reports: [PluginReport]) {
            guard !reports.isEmpty else {
                print("No plugins loaded.")
                return
            }
            let rows = [["NAME", "KIND", "VERSION", "ABI", "PATH"]]
                + reports.map { [$0.name, $0.kind.rawValue, $0.version, $0.abi, $0.path] }
            let widths = (0..<4).map { column in rows.map { $0[column].count }.max()! }
            for row in rows {
                let padded = (0..<4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                print((padded + [row[4]]).joined(separator: "  "))
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one plugin: identity, ABI, path, and its devices or links.")

        @Argument(help: "The plugin's name, as `plugins list` shows it.")
        var name: String

        @OptionGroup var plugins: PluginOptionsGroup

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let host = try plugins.makeHost()
            guard let plugin = host.plugin(named: name) else {
                let loaded = host.plugins.map(\.name).joined(separator: ", ")
                var message = "no plugin named '\(name)' is loaded (loaded: \(loaded.isEmpty ? "none" : loaded))"
                if !host.failures.isEmpty {
                    message += "; \(host.failures.count) file(s) were refused, see the warnings above"
                }
                throw CLIFailure(message)
            }
            let report = PluginReport(plugin, detailed: true)
            if json {
                print(try JSONOutput.encode(report))
            } else {
                print(PluginReportText.render(report))
            }
            if let problem = report.problem { throw CLIFailure("querying \(name) failed: \(problem)") }
        }
    }
}

struct ListJSON: Codable {
    var plugins: [PluginReport]
    var failures: [FailureJSON]
}

struct FailureJSON: Codable {
    var path: String
    var reason: String
}

enum JSONOutput {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
