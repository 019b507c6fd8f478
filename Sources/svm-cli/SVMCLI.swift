import ArgumentParser
import SVMFramework

struct SVMCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svm-cli",
        abstract: "Shared virtual memory for GPUs in userspace: plugins, devices, experiments.",
        discussion: """
            SVMFramework mirrors the process's CPU address space for devices the way the Linux
            drm_gpusvm and drm_pagemap helpers do, and loads device and interconnect plugins
            through a versioned C ABI.

            Plugins are searched in the built-in plugin folder (next to this executable, or
            $SVM_BUILTIN_PLUGIN_DIR), then in $SVM_PLUGIN_PATH, then in --plugin-path.

            Exit codes: 0 success, 1 the operation failed, 2 bad usage.
            """,
        version: "svm-cli \(SVMFrameworkVersion.current) (plugin ABI \(SVMFrameworkVersion.pluginABI))",
        subcommands: [RunCommand.self, PluginsCommand.self, BenchCommand.self])
}
