import ArgumentParser
import Foundation
import SVMFramework
import SVMPluginKit

/// The options every command that loads plugins shares.
struct PluginOptionsGroup: ParsableArguments {
    @Option(
        name: .customLong("plugin-path"),
        help: ArgumentHelp(
            "A plugin folder or file to load after the built-in plugins and $SVM_PLUGIN_PATH; repeatable, ':'-separated lists allowed.",
            valueName: "path"))
    var pluginPaths: [String] = []

    @Option(
        name: .customLong("plugin-option"),
        help: ArgumentHelp(
            "Give a plugin an option, e.g. SimDevice.memory=2G; repeatable.",
            valueName: "plugin.key=value"))
    var pluginOptions: [String] = []

    @Flag(help: "Do not load the built-in plugins (SimDevice, XeDevice, P2PFabric).")
    var noBuiltinPlugins = false

    @Flag(name: .shortAndLong, help: "Show every line plugins log, not only warnings and errors.")
    var verbose = false

    func validate() throws {
        _ = try parsedOptions()
    }

    /// `["SimDevice": ["memory": "2G"]]` from `SimDevice.memory=2G`.
    func parsedOptions() throws -> [String: [String: String]] {
        var options: [String: [String: String]] = [:]
        for text in pluginOptions {
            guard let equals = text.firstIndex(of: "="),
                let dot = text[..<equals].firstIndex(of: "."),
                dot != text.startIndex, text.index(after: dot) != equals
            else {
                throw ValidationError(
                    "--plugin-option '\(text)' is not of the form plugin.key=value (e.g. SimDevice.memory=2G)")
            }
            let plugin = String(text[..<dot])
            let key = String(text[text.index(after: dot)..<equals])
            options[plugin, default: [:]][key] = String(text[text.index(after: equals)...])
        }
        return options
    }

    /// Loads the plugins, printing each refusal on standard error as it is a problem the user
    /// should see whatever the output format. `defaults` are options a command sets, which
    /// `--plugin-option` overrides key by key.
    func makeHost(defaults: [String: [String: String]] = [:]) throws -> PluginHost {
        let threshold: LogLevel = verbose ? .debug : .warning
        let given = try parsedOptions()
        let options = defaults.merging(given) { $0.merging($1) { _, user in user } }
        let host = PluginHost(
            configuration: PluginHost.Configuration(
                searchPath: .standard(commandLineEntries: pluginPaths, includeBuiltins: !noBuiltinPlugins),
                options: options,
                logHandler: { record in
                    guard record.level >= threshold else { return }
                    StandardError.write("[\(record.plugin)] \(record.level): \(record.message)")
                }))
        for failure in host.failures { StandardError.write("warning: \(failure)") }
        // A plugin whose init failed was named by its own warning above.
        let failed = host.failures.map(\.path)
        for name in given.keys.sorted()
        where host.plugin(named: name) == nil && !failed.contains(where: { $0.hasSuffix("/lib\(name).so") }) {
            StandardError.write("warning: --plugin-option names '\(name)', which is not loaded")
        }
        return host
    }

    /// ``makeHost(defaults:)`` for a command that runs on the device plugin `device`.
    ///
    /// - Throws: ``CLIFailure`` when no plugin of that name loaded.
    func makeHost(withDevicePlugin device: String, defaults: [String: [String: String]] = [:]) throws -> PluginHost {
        let host = try makeHost(defaults: defaults)
        guard host.plugin(named: device) != nil else {
            throw CLIFailure("no device plugin named '\(device)' is loaded (see `svm-cli plugins list`)")
        }
        return host
    }
}

enum StandardError {
    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
