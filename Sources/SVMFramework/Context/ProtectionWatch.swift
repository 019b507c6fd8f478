import CSVMInterpose
import Glibc

/// How the contexts see `mprotect`, which userfaultfd does not report: the framework defines
/// `mprotect` and `pkey_mprotect` itself (`CSVMInterpose`), and its definitions call this hook
/// around the system call. Before it, each context invalidates the device mappings of the
/// SVM ranges in the interval (the MMU notifier the kernel would call), so that the change
/// takes effect for devices no later than for the CPU; a device fault racing with it binds
/// only after it ended, with the new protection (see ``ProtectionChanges``). Later device
/// accesses obey the new protection: a write to read-only memory fails with `EACCES`, any
/// access to `PROT_NONE` memory with an error, and nothing is written.
///
/// What is covered: every call of libc's `mprotect`/`pkey_mprotect` entry points that the
/// dynamic linker binds to the framework's definitions — the program's own code, on any
/// thread, always; shared libraries and plugins when the executable exports the symbols (it
/// does when a linked library refers to them, or when linked with `-Xlinker
/// --export-dynamic`). Not covered: the raw system call (`syscall(SYS_mprotect, …)`, inline
/// assembly, statically linked code with its own copy), libc's internal calls (malloc
/// growing a heap: only ever adds access), and other processes. A change that is not seen
/// leaves a device mapping with the old protection until something else invalidates it (a
/// migration, an unmap or a discard); `svm_mprotect_unwatched` makes such a change, for the
/// test that shows it.
enum ProtectionWatch {
    /// Installed once per process, the first time a context registers.
    private static let installed: Void = {
        svm_set_protection_hook { start, length, _, phase in
            for context in ContextRegistry.live {
                context.protectionChanging(start: start, length: length, ending: phase == Int32(SVM_PROTECTION_AFTER))
            }
        }
    }()

    static func install() { _ = installed }
}
