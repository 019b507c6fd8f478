import Glibc
import SVMPluginKit
import Synchronization

/// What `fork()` does to device-resident data: before the address space is copied, every
/// context brings its devices' data home into its CPU pages, so that the child gets exactly
/// the parent's data at the time of the fork, in ordinary memory.
///
/// Why this way and not by following userfaultfd's fork event: the child of a fork gets no
/// userfaultfd registration (the mirror does not ask for `UFFD_FEATURE_EVENT_FORK`), so its
/// faults are the kernel's and a hole there is a zero page. Device-resident data is a hole
/// in the CPU pages; the kernel's answer (device-private entries copied, made
/// copy-on-write) has no userspace equivalent. Following the fork event would mean serving
/// the child's faults from the parent with a snapshot of device memory taken at the fork,
/// for the child's lifetime. Bringing the data home is simple and exact; the price is one
/// migration to system memory per device-resident range at each fork (counted in
/// ``SVMStatistics/forkMigrations``); later device faults in the parent migrate it again.
///
/// How: a `pthread_atfork` prepare handler, run by the forking thread before the copy,
/// closes each context's ``MigrationGate`` (migrations to device memory wait), brings every
/// device-resident range home, and waits until no migration is under way. The parent
/// handler opens the gates again. The child's handler does nothing: a context knows it is a
/// forked copy because its process id changed (``SVMContext/isForkedCopy``), and refuses
/// device work there.
///
/// Not covered: a fork that runs no `pthread_atfork` handlers — the raw `fork`/`clone`
/// system calls — gives the child holes (zeros) where device-resident data was. `vfork` and
/// `posix_spawn` share the parent's memory until `exec` and need nothing.
enum ForkPreparation {
    /// The contexts each forking thread prepared, for its parent handler to open again.
    private static let prepared = Locked<[pthread_t: [SVMContext]]>([:])

    /// Installed once per process, the first time a context registers.
    private static let handlers: Void = {
        let status = pthread_atfork({ ForkPreparation.prepare() }, { ForkPreparation.parent() }, nil)
        precondition(status == 0, "pthread_atfork: \(status)")
    }()

    static func install() { _ = handlers }

    private static func prepare() {
        let live = ContextRegistry.live
        for context in live { context.prepareForFork() }
        prepared.withLock { $0[pthread_self()] = live }
    }

    private static func parent() {
        let live = prepared.withLock { $0.removeValue(forKey: pthread_self()) } ?? []
        for context in live { context.resumeAfterFork() }
    }
}
