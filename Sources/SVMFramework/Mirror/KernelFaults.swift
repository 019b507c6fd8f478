/// Whether the CPU mirror serves the kernel's own accesses to missing pages: `read(2)` into
/// device-resident memory, `write(2)` from it, `mlock`, `process_vm_readv`, a futex on it.
///
/// A userfaultfd sees those kernel-mode faults only when opened without
/// `UFFD_USER_MODE_ONLY`, which needs `CAP_SYS_PTRACE`, the sysctl
/// `vm.unprivileged_userfaultfd=1` or access to `/dev/userfaultfd`. Without them the
/// kernel's access fails (`EFAULT`, `ENOMEM` for `mlock`) and the context reports the
/// limitation once (``SVMContext/kernelAccessLimitation``).
public enum KernelFaults: String, Sendable, Hashable, CaseIterable, Codable {
    /// Serve them where the process may (the default): the system call, then
    /// `/dev/userfaultfd`, else user-mode faults only.
    case whenPermitted = "when-permitted"
    /// User-mode faults only, even where more is permitted: what an unprivileged process
    /// gets, for comparison and tests.
    case never
}
