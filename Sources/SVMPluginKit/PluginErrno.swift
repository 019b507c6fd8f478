#if canImport(Glibc)
import Glibc
#endif

/// A status of the plugin ABI: a negative errno that tells the caller what to do.
///
/// Plugins throw these from their ops; the kit turns them into the `svm_status` the host
/// reads, and the host turns a failed status back into the same value. A status the ABI
/// does not document (positive, `INT32_MIN`, or a negative errno outside ``documented``)
/// is a plugin bug the host survives: it becomes an I/O error that names the status it came
/// from (``undocumentedStatus``), and equals none of the documented errors.
public struct PluginErrno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value (`EINVAL`, `ENODEV`, ...); `EIO` for an undocumented status.
    public let code: Int32
    /// The status a plugin returned when it is not one the ABI documents; `nil` otherwise.
    public let undocumentedStatus: Int32?

    /// The error of errno `code` (its sign is ignored; `INT32_MIN`, which has no positive
    /// counterpart, is taken as an undocumented status).
    public init(_ code: Int32) {
        if code == .min {
            self.init(code: EIO, undocumentedStatus: code)
        } else {
            self.init(code: code < 0 ? -code : code, undocumentedStatus: nil)
        }
    }

    private init(code: Int32, undocumentedStatus: Int32?) {
        self.code = code
        self.undocumentedStatus = undocumentedStatus
    }

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
    /// No peer path between two devices: they reach each other through system memory only.
    public static let noLink = PluginErrno(ENOLINK)

    /// The errno values the ABI documents (`svm_plugin_abi.h`), by name.
    public static let documented: [Int32: String] = [
        EINVAL: "EINVAL", ENODEV: "ENODEV", ENOMEM: "ENOMEM", EAGAIN: "EAGAIN",
        EOPNOTSUPP: "EOPNOTSUPP", EFAULT: "EFAULT", EACCES: "EACCES", EIO: "EIO",
        ENOENT: "ENOENT", ENOLINK: "ENOLINK",
    ]

    /// The `svm_status` value that carries this error across the ABI (an undocumented one
    /// travels as `-EIO`).
    public var status: Int32 { -code }

    /// `nil` for a successful status, the error otherwise: any `int32_t` maps to one.
    public init?(status: Int32) {
        guard status != 0 else { return nil }
        if status < 0, status != .min, Self.documented[-status] != nil {
            self.init(-status)
        } else {
            self.init(code: EIO, undocumentedStatus: status)
        }
    }

    public var description: String {
        if let undocumentedStatus {
            return "undocumented status \(undocumentedStatus) (taken as EIO)"
        }
        let name = Self.documented[code] ?? "E\(code)"
        return "\(name) (\(String(cString: strerror(code))))"
    }
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
