import CSVMPlatform

#if canImport(Glibc)
import Glibc
#endif

/// A Linux `userfaultfd` descriptor: the CPU mirror's source of page faults and of the
/// address-space events that play the MMU notifiers' role.
///
/// The descriptor is opened with `UFFD_USER_MODE_ONLY` by default, which needs no privilege.
/// The price is that the kernel does not wait for the mirror when *it* touches a missing
/// page on the process's behalf: `read(2)` into, or `write(2)` from, a registered page
/// that is not present fails with `EFAULT` instead of raising an event. A descriptor that
/// sees those kernel-mode faults too needs a privilege (``Opening``);
/// ``openPreferringKernelFaults(required:optional:)`` takes one where the process may.
///
/// ## Threads
/// The handle is immutable and `Sendable`; the kernel serializes the ioctls, so any thread
/// may resolve faults while another reads events. Faulting threads sleep in the kernel until
/// a resolving ioctl (without `DONTWAKE`) or ``wake(_:length:)`` covers their page. The
/// thread that reads events must not unmap, `madvise` or `mremap` registered memory (see
/// ``UserFaultFDEvent``).
///
/// ## Lifetime
/// The descriptor is closed exactly once, when the last reference goes. Closing unregisters
/// every range and wakes every waiting thread; their faults are then served by the kernel as
/// if the mirror had never been there (zero-filled pages).
///
/// ## Errors
/// Shims return `0` or `-errno`. `EINTR` is retried. `EAGAIN`, `EEXIST`, `ENOENT` and, for a
/// move, `EBUSY` are ordinary outcomes of racing with the process and come back as
/// ``RangeOutcome`` values. Everything else throws ``UserFaultFDError``.
public final class UserFaultFD: Sendable {
    /// The descriptor; valid until `deinit`.
    public let descriptor: Int32
    /// The features enabled on this descriptor: what was asked for and is available.
    public let features: Features
    /// Everything the running kernel offers.
    public let availableFeatures: Features
    /// How the descriptor was opened.
    public let opening: Opening
    /// The openings with kernel-mode faults that were refused before this one, in the order
    /// tried (``openPreferringKernelFaults(required:optional:)``); empty otherwise.
    public let kernelFaultRefusals: [Refusal]
    /// Whether the descriptor only sees faults taken in user mode.
    public var isUserModeOnly: Bool { opening == .userModeOnly }

    /// How a descriptor is opened, which decides whether it sees the kernel's own faults.
    public enum Opening: String, Sendable, Hashable, CaseIterable {
        /// `userfaultfd(UFFD_USER_MODE_ONLY)`: user-mode faults only; needs no privilege.
        case userModeOnly = "userfaultfd(UFFD_USER_MODE_ONLY)"
        /// `userfaultfd(2)` without the flag: kernel-mode faults too; needs `CAP_SYS_PTRACE`
        /// or the sysctl `vm.unprivileged_userfaultfd=1`.
        case systemCall = "userfaultfd()"
        /// `/dev/userfaultfd` (`USERFAULTFD_IOC_NEW`, Linux 6.1): kernel-mode faults too, for
        /// whoever may open the device (root only, by its default mode 0600).
        case device = "/dev/userfaultfd"
    }

    /// An opening that was refused, and the error.
    public struct Refusal: Sendable, Hashable, CustomStringConvertible {
        public let opening: Opening
        public let errno: Int32
        public var description: String { "\(opening.rawValue): \(UserFaultFDError.describe(errno: errno))" }
    }

    /// What the CPU mirror cannot do without: the three address-space events (its MMU
    /// notifiers) and write-protect faults (its migration entries).
    public static let mirrorFeatures: Features = [
        .eventUnmap, .eventRemove, .eventRemap, .pagefaultFlagWP,
    ]

    /// Opens a descriptor and performs the `UFFDIO_API` handshake.
    ///
    /// The handshake can be done only once per descriptor and fails outright if one requested
    /// feature is missing, so a throwaway descriptor first asks what the kernel offers.
    /// - Parameters:
    ///   - required: features without which this throws ``UserFaultFDError/missingFeatures(_:available:)``.
    ///   - optional: features enabled when available (`move` by default; the ioctl itself
    ///     works without the flag, but asking keeps ``features`` truthful).
    ///   - userModeOnly: open with `UFFD_USER_MODE_ONLY` (needs no privilege, see above).
    public convenience init(
        required: Features = UserFaultFD.mirrorFeatures, optional: Features = [.move],
        userModeOnly: Bool = true
    ) throws(UserFaultFDError) {
        try self.init(required: required, optional: optional, opening: userModeOnly ? .userModeOnly : .systemCall)
    }

    /// Opens a descriptor the way `opening` says and performs the handshake; see
    /// ``init(required:optional:userModeOnly:)``.
    public init(
        required: Features = UserFaultFD.mirrorFeatures, optional: Features = [.move], opening: Opening,
        kernelFaultRefusals: [Refusal] = []
    ) throws(UserFaultFDError) {
        let available = try Self.probeFeatures(opening: opening)
        guard available.isSuperset(of: required) else {
            throw .missingFeatures(required.subtracting(available), available: available)
        }
        let enabled = required.union(optional.intersection(available))
        let descriptor = try Self.open(opening)
        let status = retryingInterrupts { svm_uffd_api(descriptor, enabled.rawValue, nil, nil) }
        guard status == 0 else {
            _ = svm_uffd_close(descriptor)
            throw .failed(.api, address: nil, errno: -status)
        }
        self.descriptor = descriptor
        self.features = enabled
        self.availableFeatures = available
        self.opening = opening
        self.kernelFaultRefusals = kernelFaultRefusals
    }

    /// A descriptor that sees kernel-mode faults where this process may have one: the
    /// system call without `UFFD_USER_MODE_ONLY`, then `/dev/userfaultfd`; else a
    /// user-mode-only one, whose ``kernelFaultRefusals`` say why.
    ///
    /// - Throws: what ``init(required:optional:opening:kernelFaultRefusals:)`` throws for
    ///   the user-mode-only descriptor, when even that cannot be had.
    public static func openPreferringKernelFaults(
        required: Features = UserFaultFD.mirrorFeatures, optional: Features = [.move]
    ) throws(UserFaultFDError) -> UserFaultFD {
        var refusals: [Refusal] = []
        for opening in [Opening.systemCall, .device] {
            do {
                return try UserFaultFD(required: required, optional: optional, opening: opening)
            } catch .unavailable(let code, _) {
                refusals.append(Refusal(opening: opening, errno: code))
            }
        }
        return try UserFaultFD(required: required, optional: optional, opening: .userModeOnly, kernelFaultRefusals: refusals)
    }

    deinit {
        // Linux frees the descriptor even when close reports EINTR: never retry.
        _ = svm_uffd_close(descriptor)
    }

    /// Ends the userfaultfd now while keeping the descriptor number reserved until `deinit`:
    /// `/dev/null` takes its place (`dup2`), so the kernel drops every registration and wakes
    /// every waiter, and a call made later by a thread still holding this handle fails
    /// (`ENOTTY`) instead of reaching whatever file would reuse a closed number. Call it when
    /// no thread reads events any more: from then on `munmap` of formerly registered memory
    /// must not wait for an event nobody reads.
    public func retire() {
        let null = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { return }
        _ = dup2(null, descriptor)
        _ = Glibc.close(null)
    }

    /// The features this kernel offers, from a handshake on a throwaway descriptor.
    public static func probeFeatures(userModeOnly: Bool = true) throws(UserFaultFDError) -> Features {
        try probeFeatures(opening: userModeOnly ? .userModeOnly : .systemCall)
    }

    /// The features this kernel offers, asked through a descriptor opened as `opening`.
    public static func probeFeatures(opening: Opening) throws(UserFaultFDError) -> Features {
        let descriptor = try open(opening)
        defer { _ = svm_uffd_close(descriptor) }
        var available: UInt64 = 0
        let status = retryingInterrupts { svm_uffd_api(descriptor, 0, &available, nil) }
        guard status == 0 else { throw .failed(.api, address: nil, errno: -status) }
        return Features(rawValue: available)
    }

    private static func open(_ opening: Opening) throws(UserFaultFDError) -> Int32 {
        var descriptor: Int32 = -1
        let status = retryingInterrupts {
            switch opening {
            case .userModeOnly: svm_uffd_open(1, &descriptor)
            case .systemCall: svm_uffd_open(0, &descriptor)
            case .device: svm_uffd_open_device(&descriptor)
            }
        }
        guard status == 0 else { throw .unavailable(errno: -status, userModeOnly: opening == .userModeOnly) }
        return descriptor
    }
}

// MARK: - Registration

extension UserFaultFD {
    /// `UFFDIO_REGISTER`: faults of `modes` in `[start, start + length)` become events.
    ///
    /// The range must be page-aligned and covered by VMAs that userfaultfd accepts
    /// (anonymous, shmem or hugetlbfs; else `EINVAL`) and that no other descriptor owns
    /// (else `EBUSY`). Registration splits VMAs at the range's ends.
    /// - Returns: the ioctls the range supports (``Ioctls/move`` on Linux 6.8+).
    @discardableResult
    public func register(_ start: UInt, length: Int, modes: RegisterModes) throws(UserFaultFDError) -> Ioctls {
        var ioctls: UInt64 = 0
        try check(.register, start) { svm_uffd_register(descriptor, UInt64(start), UInt64(length), modes.rawValue, &ioctls) }
        return Ioctls(rawValue: ioctls)
    }

    /// `UFFDIO_UNREGISTER`; wakes threads still waiting on missing faults in the range.
    /// Unregistering memory that is not registered succeeds.
    public func unregister(_ start: UInt, length: Int) throws(UserFaultFDError) {
        try check(.unregister, start) { svm_uffd_unregister(descriptor, UInt64(start), UInt64(length)) }
    }

    /// `UFFDIO_WAKE`: wakes the threads waiting on faults in the range, after resolving
    /// several ranges with `wake: false`.
    public func wake(_ start: UInt, length: Int) throws(UserFaultFDError) {
        try check(.wake, start) { svm_uffd_wake(descriptor, UInt64(start), UInt64(length)) }
    }
}

// MARK: - Resolving faults

extension UserFaultFD {
    /// How a resolving ioctl ended when it did not fail.
    public enum RangeOutcome: Hashable, Sendable {
        /// The whole range was done, and its waiters woken unless `wake: false`.
        case completed
        /// `-EAGAIN` after `bytes` were done (their waiters woken): retry the rest, which
        /// will most likely answer one of the other outcomes.
        case partial(bytes: Int)
        /// `-EAGAIN` before any byte: an unmap, remove or remap event is pending on this
        /// descriptor (the kernel's `mmap_changing`). Read events, then decide again: the
        /// destination may be gone.
        case mappingChanging
        /// `-EEXIST`: a page is already present at the destination (another resolver won,
        /// or a move/copy raced). The waiters were not woken: call ``UserFaultFD/wake(_:length:)``.
        case alreadyPresent
        /// `-ENOENT`: no registered VMA covers the destination (it was unmapped; the unmap
        /// event is on its way or was read). For a move, also a hole in the source without
        /// `allowSourceHoles`.
        ///
        /// The converse does not hold: the kernel checks only that the destination VMA is
        /// registered with *some* userfaultfd of the process, not with this one, and freed
        /// addresses are reused at once. A resolve aimed at a range that was unmapped and
        /// mapped again fills the new mapping. Apply unmap events before resolving.
        case notRegistered
        /// `-EBUSY`, move only: a source page is shared with another process, pinned, or a
        /// large folio that could not be split. Copy instead.
        case sourceBusy
    }

    /// `UFFDIO_COPY`: maps new pages at `destination` holding `length` bytes from `source`.
    /// - Parameters:
    ///   - wake: wake the threads faulting in the range (else batch with ``wake(_:length:)``).
    ///   - writeProtect: map the pages write-protected (needs a WP registration).
    public func copy(
        to destination: UInt, from source: UnsafeRawPointer, length: Int,
        wake: Bool = true, writeProtect: Bool = false
    ) throws(UserFaultFDError) -> RangeOutcome {
        var mode: UInt64 = 0
        if !wake { mode |= UInt64(SVM_UFFD_COPY_DONTWAKE) }
        if writeProtect { mode |= UInt64(SVM_UFFD_COPY_WP) }
        let sourceAddress = UInt64(UInt(bitPattern: source))
        return try fill(.copy, destination) { count in
            svm_uffd_copy(descriptor, UInt64(destination), sourceAddress, UInt64(length), mode, &count)
        }
    }

    /// `UFFDIO_ZEROPAGE`: maps the shared zero page at the missing pages of the range; the
    /// first write then allocates a private page without another event.
    public func zeroPage(_ start: UInt, length: Int, wake: Bool = true) throws(UserFaultFDError) -> RangeOutcome {
        let mode: UInt64 = wake ? 0 : UInt64(SVM_UFFD_ZEROPAGE_DONTWAKE)
        return try fill(.zeroPage, start) { count in
            svm_uffd_zeropage(descriptor, UInt64(start), UInt64(length), mode, &count)
        }
    }

    /// `UFFDIO_MOVE`: moves the pages at `source` (private anonymous memory of this process
    /// with the same protection) to the missing pages at `destination`, without copying;
    /// `source` becomes a hole. Throws ``UserFaultFDError/unsupported(_:)`` before Linux 6.8.
    ///
    /// `allowSourceHoles` can make the calling thread loop inside the kernel forever on
    /// Linux 6.18 when a page changes under the move and then becomes a hole; the framework
    /// steps over holes itself instead (see ``PageMover``).
    public func move(
        to destination: UInt, from source: UInt, length: Int,
        wake: Bool = true, allowSourceHoles: Bool = false
    ) throws(UserFaultFDError) -> RangeOutcome {
        guard supportsMove else { throw .unsupported(.move) }
        var mode: UInt64 = 0
        if !wake { mode |= UInt64(SVM_UFFD_MOVE_DONTWAKE) }
        if allowSourceHoles { mode |= UInt64(SVM_UFFD_MOVE_ALLOW_SRC_HOLES) }
        return try fill(.move, destination) { count in
            svm_uffd_move(descriptor, UInt64(destination), UInt64(source), UInt64(length), mode, &count)
        }
    }

    /// Whether the kernel implements `UFFDIO_MOVE`.
    public var supportsMove: Bool { availableFeatures.contains(.move) }

    /// `UFFDIO_POISON`: marks the missing pages of the range as lost. A CPU access then
    /// raises `SIGBUS` and the kernel's accesses (`process_vm_readv`) fail with `EFAULT`,
    /// until `munmap` or `madvise(MADV_DONTNEED)` clears the marks. What the framework does
    /// with data whose only copy was lost (a device reset): never a page of zeros in its
    /// place. Throws ``UserFaultFDError/unsupported(_:)`` before Linux 6.6.
    public func poison(_ start: UInt, length: Int, wake: Bool = true) throws(UserFaultFDError) -> RangeOutcome {
        guard supportsPoison else { throw .unsupported(.poison) }
        let mode: UInt64 = wake ? 0 : UInt64(SVM_UFFD_POISON_DONTWAKE)
        return try fill(.poison, start) { count in
            svm_uffd_poison(descriptor, UInt64(start), UInt64(length), mode, &count)
        }
    }

    /// Whether the kernel implements `UFFDIO_POISON`.
    public var supportsPoison: Bool { availableFeatures.contains(.poison) }

    /// `UFFDIO_WRITEPROTECT` with `WP`: writes to the present pages of the range now raise
    /// write-protect faults. Pages that are not present are unaffected (their next touch is
    /// a missing fault if the range is also registered for missing faults).
    /// - Returns: `.completed`, `.mappingChanging` or `.notRegistered` (not registered for WP).
    public func writeProtect(_ start: UInt, length: Int) throws(UserFaultFDError) -> RangeOutcome {
        try protect(start, length: length, mode: UInt64(SVM_UFFD_WRITEPROTECT_WP))
    }

    /// `UFFDIO_WRITEPROTECT` without `WP`: lifts the protection and, unless `wake: false`,
    /// wakes the writers that were waiting; their writes then land.
    /// - Returns: `.completed`, `.mappingChanging` or `.notRegistered`.
    public func writeUnprotect(_ start: UInt, length: Int, wake: Bool = true) throws(UserFaultFDError) -> RangeOutcome {
        try protect(start, length: length, mode: wake ? 0 : UInt64(SVM_UFFD_WRITEPROTECT_DONTWAKE))
    }

    private func protect(_ start: UInt, length: Int, mode: UInt64) throws(UserFaultFDError) -> RangeOutcome {
        let status = retryingInterrupts { svm_uffd_writeprotect(descriptor, UInt64(start), UInt64(length), mode) }
        switch -status {
        case 0: return .completed
        case EAGAIN: return .mappingChanging
        case ENOENT: return .notRegistered
        default: throw .failed(.writeProtect, address: start, errno: -status)
        }
    }

    /// Runs a filling ioctl and sorts its errno into outcomes and errors.
    private func fill(
        _ operation: UserFaultFDError.Operation, _ address: UInt,
        _ body: (inout Int64) -> Int32
    ) throws(UserFaultFDError) -> RangeOutcome {
        var count: Int64 = 0
        let status = retryingInterrupts { body(&count) }
        switch -status {
        case 0: return .completed
        case EAGAIN: return count > 0 ? .partial(bytes: Int(count)) : .mappingChanging
        case EEXIST: return .alreadyPresent
        case ENOENT: return .notRegistered
        case EBUSY where operation == .move: return .sourceBusy
        default: throw .failed(operation, address: address, errno: -status)
        }
    }
}

// MARK: - Events

extension UserFaultFD {
    /// Reads one queued event, or returns `nil` when none is queued (the descriptor is
    /// non-blocking).
    public func readEvent() throws(UserFaultFDError) -> UserFaultFDEvent? {
        var event = svm_uffd_event()
        let status = retryingInterrupts { svm_uffd_read_event(descriptor, &event) }
        switch -status {
        case 0: return UserFaultFDEvent(event)
        case EAGAIN: return nil
        default: throw .failed(.read, address: nil, errno: -status)
        }
    }

    /// Waits at most `timeout` for an event and reads it; `nil` when none came in time.
    /// Several readers may share the descriptor: one that loses a race for an event waits on.
    public func waitForEvent(timeout: Duration) throws(UserFaultFDError) -> UserFaultFDEvent? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if let event = try readEvent() { return event }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { return nil }
            _ = try waitUntilReadable(timeout: remaining)
        }
    }

    /// Waits at most `timeout` until an event is queued, without reading it; `false` on
    /// timeout. While an unmap, remove or remap event is queued and unread, the thread that
    /// caused it sleeps and resolving ioctls answer ``RangeOutcome/mappingChanging``.
    public func waitUntilReadable(timeout: Duration) throws(UserFaultFDError) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let remaining = clock.now.duration(to: deadline)
            let status = svm_uffd_poll(descriptor, max(remaining, .zero).wholeNanoseconds(roundingUp: true))
            switch status {
            case 1: return true
            case 0 where remaining <= .zero: return false
            case 0, -EINTR: continue
            default: throw .failed(.poll, address: nil, errno: -status)
            }
        }
    }

    /// Runs a shim on an address range and throws its errno, if any.
    private func check(
        _ operation: UserFaultFDError.Operation, _ address: UInt, _ body: () -> Int32
    ) throws(UserFaultFDError) {
        let status = retryingInterrupts(body)
        guard status == 0 else { throw .failed(operation, address: address, errno: -status) }
    }
}

/// Runs a shim that answers `0` or `-errno` until it answers something other than `-EINTR`.
private func retryingInterrupts(_ body: () -> Int32) -> Int32 {
    while true {
        let status = body()
        if status != -EINTR { return status }
    }
}

// MARK: - Flags

extension UserFaultFD {
    /// `UFFD_FEATURE_*`: what the handshake can enable.
    public struct Features: OptionSet, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        private init(_ bit: Int) { rawValue = UInt64(bit) }

        /// Write-protect faults are reported (flag `WP` on page faults).
        public static let pagefaultFlagWP = Features(SVM_UFFD_FEATURE_PAGEFAULT_FLAG_WP)
        /// Fork events; needs CAP_SYS_PTRACE.
        public static let eventFork = Features(SVM_UFFD_FEATURE_EVENT_FORK)
        public static let eventRemap = Features(SVM_UFFD_FEATURE_EVENT_REMAP)
        public static let eventRemove = Features(SVM_UFFD_FEATURE_EVENT_REMOVE)
        public static let missingHugetlbfs = Features(SVM_UFFD_FEATURE_MISSING_HUGETLBFS)
        public static let missingShmem = Features(SVM_UFFD_FEATURE_MISSING_SHMEM)
        public static let eventUnmap = Features(SVM_UFFD_FEATURE_EVENT_UNMAP)
        /// Faults raise SIGBUS instead of events.
        public static let sigbus = Features(SVM_UFFD_FEATURE_SIGBUS)
        public static let threadID = Features(SVM_UFFD_FEATURE_THREAD_ID)
        public static let minorHugetlbfs = Features(SVM_UFFD_FEATURE_MINOR_HUGETLBFS)
        public static let minorShmem = Features(SVM_UFFD_FEATURE_MINOR_SHMEM)
        public static let exactAddress = Features(SVM_UFFD_FEATURE_EXACT_ADDRESS)
        public static let wpHugetlbfsShmem = Features(SVM_UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
        /// Write protection also covers pages not yet populated (Linux 6.4).
        public static let wpUnpopulated = Features(SVM_UFFD_FEATURE_WP_UNPOPULATED)
        public static let poison = Features(SVM_UFFD_FEATURE_POISON)
        public static let wpAsync = Features(SVM_UFFD_FEATURE_WP_ASYNC)
        /// `UFFDIO_MOVE` (Linux 6.8).
        public static let move = Features(SVM_UFFD_FEATURE_MOVE)

        private static let names: [(Features, String)] = [
            (.pagefaultFlagWP, "PAGEFAULT_FLAG_WP"), (.eventFork, "EVENT_FORK"),
            (.eventRemap, "EVENT_REMAP"), (.eventRemove, "EVENT_REMOVE"),
            (.missingHugetlbfs, "MISSING_HUGETLBFS"), (.missingShmem, "MISSING_SHMEM"),
            (.eventUnmap, "EVENT_UNMAP"), (.sigbus, "SIGBUS"), (.threadID, "THREAD_ID"),
            (.minorHugetlbfs, "MINOR_HUGETLBFS"), (.minorShmem, "MINOR_SHMEM"),
            (.exactAddress, "EXACT_ADDRESS"), (.wpHugetlbfsShmem, "WP_HUGETLBFS_SHMEM"),
            (.wpUnpopulated, "WP_UNPOPULATED"), (.poison, "POISON"), (.wpAsync, "WP_ASYNC"),
            (.move, "MOVE"),
        ]

        /// `[EVENT_UNMAP, MOVE]`, with unknown bits in hex.
        public var description: String {
            var parts = Self.names.filter { contains($0.0) }.map(\.1)
            let unknown = subtracting(Features(rawValue: Self.names.reduce(0) { $0 | $1.0.rawValue }))
            if !unknown.isEmpty { parts.append("0x" + String(unknown.rawValue, radix: 16)) }
            return "[" + parts.joined(separator: ", ") + "]"
        }
    }

    /// `UFFDIO_REGISTER_MODE_*`: which faults of a range become events.
    public struct RegisterModes: OptionSet, Hashable, Sendable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// Touching a page that is not present.
        public static let missing = RegisterModes(rawValue: UInt64(SVM_UFFD_REGISTER_MISSING))
        /// Writing a page protected with ``UserFaultFD/writeProtect(_:length:)``.
        public static let writeProtect = RegisterModes(rawValue: UInt64(SVM_UFFD_REGISTER_WP))
        /// Touching a page present in the page cache but not mapped (shmem, hugetlbfs).
        public static let minor = RegisterModes(rawValue: UInt64(SVM_UFFD_REGISTER_MINOR))
    }

    /// The ioctls a descriptor or a registered range supports (bit `_UFFDIO_*`).
    public struct Ioctls: OptionSet, Hashable, Sendable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        private init(bit: Int) { rawValue = 1 << UInt64(bit) }

        public static let register = Ioctls(bit: SVM_UFFD_IOCTL_REGISTER)
        public static let unregister = Ioctls(bit: SVM_UFFD_IOCTL_UNREGISTER)
        public static let wake = Ioctls(bit: SVM_UFFD_IOCTL_WAKE)
        public static let copy = Ioctls(bit: SVM_UFFD_IOCTL_COPY)
        public static let zeroPage = Ioctls(bit: SVM_UFFD_IOCTL_ZEROPAGE)
        public static let move = Ioctls(bit: SVM_UFFD_IOCTL_MOVE)
        public static let writeProtect = Ioctls(bit: SVM_UFFD_IOCTL_WRITEPROTECT)
        public static let `continue` = Ioctls(bit: SVM_UFFD_IOCTL_CONTINUE)
        public static let poison = Ioctls(bit: SVM_UFFD_IOCTL_POISON)
        public static let api = Ioctls(bit: SVM_UFFD_IOCTL_API)
    }
}
