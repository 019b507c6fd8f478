import CSVMPluginABI

/// Keeps an initialised plugin alive and calls its `fini` exactly once, when the last
/// holder lets go.
///
/// The plugin record, its ops wrappers and every open device hold one, so `fini` can never
/// run while a device is open or an op can still be called, however long a caller keeps a
/// ``LoadedPlugin`` after the ``PluginHost`` is gone.
final class PluginLifetime: @unchecked Sendable {
    // Immutable: the plugin's static descriptor and the context its init returned.
    let descriptor: UnsafePointer<svm_plugin_descriptor>
    let context: UnsafeMutableRawPointer?

    init(descriptor: UnsafePointer<svm_plugin_descriptor>, context: UnsafeMutableRawPointer?) {
        self.descriptor = descriptor
        self.context = context
    }

    deinit {
        if let fini = descriptor.pointee.fini { fini(context) }
    }
}
