#if canImport(Glibc)
import Glibc
#endif

/// A status of the plugin ABI: a negative errno that tells the caller what to do.
///
/// Plugins throw these from their ops; the kit turns them into the `svm_status` the host
/// reads, and the host turns a failed status back into the same value.
public struct PluginErrno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value (`EINVAL`, `ENODEV`, ...).
    public let code: Int32

    public init(_ code: Int32) { self.code = code < 0 ? -code : code }

    /// Bad argument: a bug in the caller.
    public static let invalidArgument = PluginErrno(EINVAL)
    /// No such device.
    public static let noDevice = PluginErrno(ENODEV)
    /// Out of memory: the caller may evict and retry.
    public static let outOfMemory = PluginErrno(ENOMEM)
    /// Transient: retry.
    public static let tryAgain = PluginErrno(EAGAIN)
    /// Not supported: fall back.
    public static let notSupported = PluginErrno(EOPNOTSUPP)
    /// Bad address.
    public static let badAddress = PluginErrno(EFAULT)
    /// Access not allowed.
    public static let accessDenied = PluginErrno(EACCES)
    /// Device or I/O error.
    public static let ioError = PluginErrno(EIO)
    /// The key, file or item does not exist.
    public static let notFound = PluginErrno(ENOENT)

    /// The `svm_status` value that carries this error across the ABI.
    public var status: Int32 { -code }

    /// `nil` for a successful status, the error otherwise.
    public init?(status: Int32) {
        guard status != 0 else { return nil }
        self.init(status)
    }

    public var description: String {
        let name = Self.names[code] ?? "E\(code)"
        return "\(name) (\(String(cString: strerror(code))))"
    }

    private static let names: [Int32: String] = [
        EINVAL: "EINVAL", ENODEV: "ENODEV", ENOMEM: "ENOMEM", EAGAIN: "EAGAIN",
        EOPNOTSUPP: "EOPNOTSUPP", EFAULT: "EFAULT", EACCES: "EACCES", EIO: "EIO",
        ENOENT: "ENOENT",
    ]
}

/// An error that knows which ABI status it should travel as (for example a bad option is
/// `EINVAL`). Errors without this conformance travel as `EIO`.
public protocol PluginStatusConvertible: Error {
    var pluginErrno: PluginErrno { get }
}

extension PluginErrno {
    /// Runs an op's body and reports its outcome as an `svm_status`. Errors other than a bare
    /// `PluginErrno` are shown to `report` first, so their message is not lost.
    public static func status(reporting report: (any Error) -> Void = { _ in }, _ body: () throws -> Void)
        -> Int32
    {
        do {
            try body()
            return 0
        } catch let error as PluginErrno {
            return error.status
        } catch {
            report(error)
            return ((error as? any PluginStatusConvertible)?.pluginErrno ?? .ioError).status
        }
    }
}

extension PluginErrno {
    /// Throws the error an op's `svm_status` carries; returns for 0.
    public static func check(_ status: Int32) throws {
        if let error = PluginErrno(status: status) { throw error }
    }
}
