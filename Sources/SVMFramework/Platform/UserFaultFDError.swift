#if canImport(Glibc)
import Glibc
#endif

/// A `userfaultfd` operation that failed in a way the caller cannot treat as a normal outcome.
///
/// Normal outcomes — a range already filled, a range being unmapped, a partial copy — are
/// values of ``UserFaultFD/RangeOutcome``, not errors. What remains is a bug in the caller
/// (`EINVAL`: unaligned or unregistered range, `EFAULT`: bad source, `EBADF`), resource
/// exhaustion (`ENOMEM`), the process exiting (`ESRCH`), or a missing kernel facility.
public enum UserFaultFDError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The system call or ioctl, as the kernel names it.
    public enum Operation: String, Hashable, Sendable {
        case open = "userfaultfd"
        case api = "UFFDIO_API"
        case register = "UFFDIO_REGISTER"
        case unregister = "UFFDIO_UNREGISTER"
        case wake = "UFFDIO_WAKE"
        case copy = "UFFDIO_COPY"
        case zeroPage = "UFFDIO_ZEROPAGE"
        case writeProtect = "UFFDIO_WRITEPROTECT"
        case move = "UFFDIO_MOVE"
        case poison = "UFFDIO_POISON"
        case read = "read"
        case poll = "poll"
    }

    /// `userfaultfd(2)` itself was refused, so this process cannot mirror CPU memory.
    case unavailable(errno: Int32, userModeOnly: Bool)
    /// The handshake worked but the kernel lacks features the caller cannot do without.
    case missingFeatures(UserFaultFD.Features, available: UserFaultFD.Features)
    /// The kernel does not implement the operation (`UFFDIO_MOVE` before Linux 6.8).
    case unsupported(Operation)
    /// The operation failed; `address` is the start of the range it was given, if any.
    case failed(Operation, address: UInt?, errno: Int32)

    /// The positive errno behind the error, if there is one.
    public var errno: Int32? {
        switch self {
        case .unavailable(let code, _), .failed(_, _, let code): code
        case .missingFeatures, .unsupported: nil
        }
    }

    public var description: String {
        switch self {
        case .unavailable(let code, let userModeOnly):
            var text = "userfaultfd is unavailable: \(Self.describe(errno: code))."
            switch code {
            case EPERM, EACCES:
                text += userModeOnly
                    ? " Even UFFD_USER_MODE_ONLY descriptors, which need no privilege, were refused:"
                        + " a seccomp filter (a container's default profile) or a security module"
                        + " blocks the system call."
                    : " Without UFFD_USER_MODE_ONLY the process needs CAP_SYS_PTRACE or the sysctl"
                        + " vm.unprivileged_userfaultfd=1; open with UFFD_USER_MODE_ONLY (Linux 5.11+)"
                        + " instead, or check for a seccomp filter that blocks the system call."
            case ENOSYS:
                text += " The kernel is built without CONFIG_USERFAULTFD, or a seccomp filter"
                    + " answers ENOSYS for it."
            case EINVAL where userModeOnly:
                text += " The kernel predates UFFD_USER_MODE_ONLY (Linux 5.11); without it"
                    + " the process needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1."
            default:
                break
            }
            return text
        case .missingFeatures(let missing, let available):
            return "userfaultfd lacks required features \(missing) (the kernel offers \(available))"
        case .unsupported(let operation):
            return "\(operation.rawValue) is not supported by this kernel"
        case .failed(let operation, let address, let code):
            let location = address.map { " at 0x\(String($0, radix: 16))" } ?? ""
            return "\(operation.rawValue)\(location): \(Self.describe(errno: code))"
        }
    }

    /// `"EEXIST (File exists)"`: the symbolic name, which is what kernel documentation uses,
    /// then the C library's text.
    static func describe(errno code: Int32) -> String {
        let name = errnoNames[code] ?? "errno \(code)"
        return "\(name) (\(String(cString: strerror(code))))"
    }

    private static let errnoNames: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO",
        EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
        EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ENOTTY: "ENOTTY",
        ENOSPC: "ENOSPC", ENOSYS: "ENOSYS", EPROTO: "EPROTO", EOPNOTSUPP: "EOPNOTSUPP",
        EMFILE: "EMFILE", ENFILE: "ENFILE",
    ]
}
