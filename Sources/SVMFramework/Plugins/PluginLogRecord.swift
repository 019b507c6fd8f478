import SVMPluginKit

/// One line a plugin logged through the host.
public struct PluginLogRecord: Sendable, Hashable {
    public let plugin: String
    public let level: LogLevel
    public let message: String

    public init(plugin: String, level: LogLevel, message: String) {
        self.plugin = plugin
        self.level = level
        self.message = message
    }
}
