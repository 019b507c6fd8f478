import CSVMPlatform

/// A shared object opened with `dlopen(RTLD_NOW | RTLD_LOCAL)`.
///
/// It is never closed: a Swift plugin registers its type metadata with the Swift runtime
/// when it loads, and the runtime cannot forget an image, so unloading one is unsafe.
struct DynamicLibrary: @unchecked Sendable {
    // The handle is immutable and dlsym is thread-safe.
    private let handle: UnsafeMutableRawPointer

    /// Opens `path`; throws the loader's own explanation (`invalid ELF header`, ...).
    init(path: String) throws(DynamicLibraryError) {
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = svm_dl_open(path, &message, message.count) else {
            let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            throw DynamicLibraryError(message: String(decoding: bytes, as: UTF8.self))
        }
        self.handle = handle
    }

    /// The address of `symbol`, or `nil` when the object does not define it.
    func symbol(_ symbol: String) -> UnsafeMutableRawPointer? {
        svm_dl_symbol(handle, symbol)
    }
}

struct DynamicLibraryError: Error {
    let message: String
}
