import Foundation

/// Where the host looks for plugins, in order: the built-in plugins, then each entry of
/// `SVM_PLUGIN_PATH`, then each `--plugin-path`. An entry is a folder (every `*.so` in it,
/// by name) or a single file. When two files declare the same plugin name, the first one
/// loaded wins and the other is refused with a message.
public struct PluginSearchPath: Sendable, Hashable {
    /// Where a candidate file came from.
    public enum Origin: String, Sendable, Hashable, Codable {
        case builtin
        case environment
        case commandLine = "command-line"
    }

    /// A file to try, and where it came from.
    public struct Candidate: Sendable, Hashable {
        public let path: String
        public let origin: Origin
    }

    /// The environment variable with extra plugin folders or files, `:`-separated.
    public static let pathVariable = "SVM_PLUGIN_PATH"
    /// The environment variable that moves the built-in plugin folder (for installs).
    public static let builtinDirectoryVariable = "SVM_BUILTIN_PLUGIN_DIR"
    /// The files of the plugins this package builds.
    public static let builtinPluginFiles = ["libSimDevice.so", "libXeDevice.so", "libP2PFabric.so"]

    /// The folder of the built-in plugins, or `nil` to load none of them.
    public var builtinDirectory: String?
    public var environmentEntries: [String]
    public var commandLineEntries: [String]

    public init(
        builtinDirectory: String?, environmentEntries: [String] = [],
        commandLineEntries: [String] = []
    ) {
        self.builtinDirectory = builtinDirectory
        self.environmentEntries = environmentEntries
        self.commandLineEntries = commandLineEntries
    }

    /// The path of this process: the built-in folder is `SVM_BUILTIN_PLUGIN_DIR` or the
    /// folder of the running executable, where the package's build puts the plugins.
    public static func standard(
        commandLineEntries: [String] = [], includeBuiltins: Bool = true,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> PluginSearchPath {
        let builtin = includeBuiltins ? (environment[builtinDirectoryVariable] ?? executableDirectory()) : nil
        return PluginSearchPath(
            builtinDirectory: builtin,
            environmentEntries: split(environment[pathVariable] ?? ""),
            commandLineEntries: commandLineEntries.flatMap(split))
    }

    /// `a:b::c` → `[a, b, c]`.
    static func split(_ list: String) -> [String] {
        list.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
    }

    static func executableDirectory() -> String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        else { return nil }
        return (executable as NSString).deletingLastPathComponent
    }

    /// The files to try, in order, each real file once; and the entries that could not be
    /// read.
    public func candidates() -> (files: [Candidate], failures: [PluginLoadFailure]) {
        var files: [Candidate] = []
        var failures: [PluginLoadFailure] = []
        var seen = Set<String>()
        func add(_ path: String, _ origin: Origin) {
            let real = (path as NSString).resolvingSymlinksInPath
            if seen.insert(real).inserted { files.append(Candidate(path: path, origin: origin)) }
        }
        if let directory = builtinDirectory {
            for name in Self.builtinPluginFiles {
                let path = (directory as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: path) {
                    add(path, .builtin)
                } else {
                    failures.append(
                        PluginLoadFailure(
                            path: path, reason: .notFound("built-in plugin missing; build the package with `swift build`")))
                }
            }
        }
        for (entries, origin) in [(environmentEntries, Origin.environment), (commandLineEntries, .commandLine)] {
            for entry in entries {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: entry, isDirectory: &isDirectory) else {
                    failures.append(
                        PluginLoadFailure(path: entry, reason: .notFound("no such file or folder (from \(origin.description))")))
                    continue
                }
                guard isDirectory.boolValue else {
                    add(entry, origin)
                    continue
                }
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: entry) else {
                    failures.append(PluginLoadFailure(path: entry, reason: .notFound("folder cannot be read")))
                    continue
                }
                for name in names.sorted() where Self.looksLikeSharedObject(name) {
                    add((entry as NSString).appendingPathComponent(name), origin)
                }
            }
        }
        return (files, failures)
    }

    /// `libfoo.so` and `libfoo.so.1` are candidates; `foo.so.txt` is not.
    static func looksLikeSharedObject(_ name: String) -> Bool {
        if name.hasSuffix(".so") { return true }
        guard let range = name.range(of: ".so.") else { return false }
        return name[range.upperBound...].allSatisfy { $0.isNumber || $0 == "." }
    }
}

extension PluginSearchPath.Origin: CustomStringConvertible {
    public var description: String {
        switch self {
        case .builtin: "the built-in plugin folder"
        case .environment: PluginSearchPath.pathVariable
        case .commandLine: "--plugin-path"
        }
    }
}
