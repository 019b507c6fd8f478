import CSVMPluginABI

/// Keeps an initialised plugin alive and calls its `fini` exactly once, when the last
/// holder lets go.
///
/// The plugin record, its ops wrappers and every open device hold one, so `fini` can never
/// run while a device is open or an op can still be called, however long a caller keeps a
/// ``LoadedPlugin`` after the ``PluginHost`` is gone.
final class PluginLifetime: @unchecked Sendable {
    // Immutable: the descriptor's fini (from the host's copy) and the context init returned.
    private let fini: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    let context: UnsafeMutableRawPointer?

    init(fini: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?, context: UnsafeMutableRawPointer?) {
        self.fini = fini
        self.context = context
    }

    deinit {
        if let fini { fini(context) }
    }
}
