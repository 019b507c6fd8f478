import SVMPluginKit
import Synchronization

/// Loads every plugin of a search path and keeps them: the framework's plugin registry.
///
/// A file that cannot be used is refused with a ``PluginLoadFailure`` and the host carries on
/// with the others. Plugins are initialised in search-path order; each is finalised when the
/// last reference to it (the host, a ``LoadedPlugin``, its ops or an open device) goes.
public final class PluginHost: Sendable {
    public struct Configuration: Sendable {
        public var searchPath: PluginSearchPath
        /// Options per plugin name: `["SimDevice": ["memory": "2G"]]`.
        public var options: [String: [String: String]]
        public var clock: SimulationClock
        /// Receives every line plugins log, from any thread.
        public var logHandler: @Sendable (PluginLogRecord) -> Void

        public init(
            searchPath: PluginSearchPath = .standard(), options: [String: [String: String]] = [:],
            clock: SimulationClock = SimulationClock(),
            logHandler: @escaping @Sendable (PluginLogRecord) -> Void = { _ in }
        ) {
            self.searchPath = searchPath
            self.options = options
            self.clock = clock
            self.logHandler = logHandler
        }
    }

    /// The loaded plugins, in load order.
    public let plugins: [LoadedPlugin]
    /// What was refused, in search order.
    public let failures: [PluginLoadFailure]
    public let clock: SimulationClock

    public init(configuration: Configuration = Configuration()) {
        let (candidates, searchFailures) = configuration.searchPath.candidates()
        var plugins: [LoadedPlugin] = []
        var failures = searchFailures
        for candidate in candidates {
            do throws(PluginLoadFailure) {
                let validated = try PluginLoader.open(candidate.path)
                let name = validated.identity.name
                if let other = plugins.first(where: { $0.name == name }) {
                    throw PluginLoadFailure(path: candidate.path, reason: .duplicateName(name, loadedFrom: other.path))
                }
                let services = PluginServices(
                    pluginName: name, options: configuration.options[name] ?? [:],
                    clock: configuration.clock, faultHandler: nil, logHandler: configuration.logHandler)
                let context = try PluginLoader.initialize(validated, path: candidate.path, services: services)
                plugins.append(
                    LoadedPlugin(
                        tables: validated.tables, identity: validated.identity,
                        negotiatedABI: validated.negotiatedABI, path: candidate.path,
                        origin: candidate.origin, context: context, services: services))
            } catch {
                failures.append(error)
            }
        }
        self.plugins = plugins
        self.failures = failures
        self.clock = configuration.clock
    }

    /// The loaded plugin called `name`.
    public func plugin(named name: String) -> LoadedPlugin? {
        plugins.first { $0.name == name }
    }

    /// Routes every device fault plugins report to `handler` (the SVM core).
    public func setDeviceFaultHandler(_ handler: (any DeviceFaultHandler)?) {
        for plugin in plugins { plugin.services.faultHandler.withLock { $0 = handler } }
    }
}
