import SVMPluginKit

/// What the SVM core asks an open device before it uses it: which optional op groups of
/// ABI 1.1 the plugin provides. Every device a ``PluginHost`` opens conforms.
///
/// The answers come from the plugin's ops tables, so they cost nothing and never call the
/// plugin. A device without them still answers the ops, with `PluginErrno.notSupported`:
///
/// ```swift
/// let device = try driver.openDevice(at: 0, hostDevice: handle)
/// let usable = (device as? any SVMCapableDevice)?.supportsPageTable ?? false
/// ```
public protocol SVMCapableDevice: OpenDevice {
    /// Whether the device has memory the core can migrate to: `devmem_alloc`, `devmem_free`,
    /// `copy_to_devmem` and `copy_to_ram` (the loader refuses a plugin with only some).
    var supportsDeviceMemory: Bool { get }
    /// Whether the device can mirror SVM: `bind`, `zap` and `run_kernel`, all three.
    var supportsPageTable: Bool { get }
}
