/// A plugin option with a value the plugin cannot use; thrown from `init(host:)`, it becomes
/// the plugin's init failure message.
public struct PluginOptionError: PluginStatusConvertible, CustomStringConvertible, Sendable {
    public var pluginErrno: PluginErrno { .invalidArgument }

    public let plugin: String
    public let key: String
    public let value: String
    public let expected: String

    public init(plugin: String, key: String, value: String, expected: String) {
        self.plugin = plugin
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String {
        "option \(plugin).\(key)=\(value) is invalid: expected \(expected)"
    }
}
