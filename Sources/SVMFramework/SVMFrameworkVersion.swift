import SVMPluginKit

/// Versions of this build.
public enum SVMFrameworkVersion {
    /// The framework and CLI version.
    public static let current = "0.1.0"
    /// The plugin ABI this build speaks.
    public static let pluginABI = ABIVersion.current
}
