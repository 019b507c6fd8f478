import CSVMPlatform

/// A shared object opened with `dlopen(RTLD_NOW | RTLD_LOCAL)`.
///
/// It is never closed: a Swift plugin registers its type metadata with the Swift runtime
/// when it loads, and the runtime cannot forget an image, so unloading one is unsafe.
struct DynamicLibrary: @unchecked Sendable {
    // The handle is immutable and dlsym is thread-safe.
    private let handle: UnsafeMutableRawPointer

    /// Opens `path` once it passed the checks of `svm_dl_check_file` (a regular ELF shared
    /// object of this machine, not truncated: the dynamic loader crashes on a truncated one,
    /// and waits for ever on a FIFO); throws that check's reason or the loader's own
    /// explanation (`invalid ELF header`, ...).
    init(path: String) throws(DynamicLibraryError) {
        var message = [CChar](repeating: 0, count: 512)
        guard svm_dl_check_file(path, &message, message.count) == 0 else {
            throw DynamicLibraryError(message: Self.text(message))
        }
        guard let handle = svm_dl_open(path, &message, message.count) else {
            throw DynamicLibraryError(message: Self.text(message))
        }
        self.handle = handle
    }

    private static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address of `symbol`, or `nil` when the object does not define it.
    func symbol(_ symbol: String) -> UnsafeMutableRawPointer? {
        svm_dl_symbol(handle, symbol)
    }

    /// Whether `address` starts a function of a loaded object (its ELF symbol's type).
    static func isFunction(_ address: UnsafeMutableRawPointer) -> Bool {
        svm_dl_is_function(address) != 0
    }
}

struct DynamicLibraryError: Error {
    let message: String
}
