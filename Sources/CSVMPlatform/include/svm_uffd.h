/* svm_uffd.h - prefixed shims for Linux userfaultfd(2), the CPU mirror's page-fault source.
 *
 * Every function returns 0 (or the documented non-negative value) on success and -errno on
 * failure; none of them leaves meaning in errno. The header is self-contained so that Swift
 * sees only these names: the kernel's uapi header is included by svm_uffd.c, which checks
 * with static assertions that every constant below equals the kernel's. */
#ifndef SVM_UFFD_H
#define SVM_UFFD_H

#include <stdint.h>

/* Features (uffdio_api.features), bit for bit UFFD_FEATURE_*. */
enum {
    SVM_UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0,
    SVM_UFFD_FEATURE_EVENT_FORK = 1 << 1,
    SVM_UFFD_FEATURE_EVENT_REMAP = 1 << 2,
    SVM_UFFD_FEATURE_EVENT_REMOVE = 1 << 3,
    SVM_UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4,
    SVM_UFFD_FEATURE_MISSING_SHMEM = 1 << 5,
    SVM_UFFD_FEATURE_EVENT_UNMAP = 1 << 6,
    SVM_UFFD_FEATURE_SIGBUS = 1 << 7,
    SVM_UFFD_FEATURE_THREAD_ID = 1 << 8,
    SVM_UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9,
    SVM_UFFD_FEATURE_MINOR_SHMEM = 1 << 10,
    SVM_UFFD_FEATURE_EXACT_ADDRESS = 1 << 11,
    SVM_UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12,
    SVM_UFFD_FEATURE_WP_UNPOPULATED = 1 << 13,
    SVM_UFFD_FEATURE_POISON = 1 << 14,
    SVM_UFFD_FEATURE_WP_ASYNC = 1 << 15,
    SVM_UFFD_FEATURE_MOVE = 1 << 16,
};

/* Registration modes (uffdio_register.mode). */
enum {
    SVM_UFFD_REGISTER_MISSING = 1 << 0,
    SVM_UFFD_REGISTER_WP = 1 << 1,
    SVM_UFFD_REGISTER_MINOR = 1 << 2,
};

/* Bit numbers of the ioctls mask that UFFDIO_API and UFFDIO_REGISTER return. */
enum {
    SVM_UFFD_IOCTL_REGISTER = 0x00,
    SVM_UFFD_IOCTL_UNREGISTER = 0x01,
    SVM_UFFD_IOCTL_WAKE = 0x02,
    SVM_UFFD_IOCTL_COPY = 0x03,
    SVM_UFFD_IOCTL_ZEROPAGE = 0x04,
    SVM_UFFD_IOCTL_MOVE = 0x05,
    SVM_UFFD_IOCTL_WRITEPROTECT = 0x06,
    SVM_UFFD_IOCTL_CONTINUE = 0x07,
    SVM_UFFD_IOCTL_POISON = 0x08,
    SVM_UFFD_IOCTL_API = 0x3F,
};

/* Modes of the resolving ioctls. DONTWAKE leaves the faulting threads asleep until a later
 * svm_uffd_wake (batching); COPY_WP maps the new page write-protected. */
enum {
    SVM_UFFD_COPY_DONTWAKE = 1 << 0,
    SVM_UFFD_COPY_WP = 1 << 1,
    SVM_UFFD_ZEROPAGE_DONTWAKE = 1 << 0,
    SVM_UFFD_WRITEPROTECT_WP = 1 << 0,
    SVM_UFFD_WRITEPROTECT_DONTWAKE = 1 << 1,
    SVM_UFFD_MOVE_DONTWAKE = 1 << 0,
    SVM_UFFD_MOVE_ALLOW_SRC_HOLES = 1 << 1,
    SVM_UFFD_POISON_DONTWAKE = 1 << 0,
};

/* Event kinds (uffd_msg.event). */
enum {
    SVM_UFFD_EVENT_PAGEFAULT = 0x12,
    SVM_UFFD_EVENT_FORK = 0x13,
    SVM_UFFD_EVENT_REMAP = 0x14,
    SVM_UFFD_EVENT_REMOVE = 0x15,
    SVM_UFFD_EVENT_UNMAP = 0x16,
};

/* Page-fault flags (uffd_msg.arg.pagefault.flags). */
enum {
    SVM_UFFD_PAGEFAULT_WRITE = 1 << 0,
    SVM_UFFD_PAGEFAULT_WP = 1 << 1,
    SVM_UFFD_PAGEFAULT_MINOR = 1 << 2,
};

/* One uffd_msg, unpacked (the kernel's is a packed union Swift should not see).
 *   PAGEFAULT: a = address (page-aligned unless EXACT_ADDRESS), flags, thread_id (THREAD_ID)
 *   REMAP:     a = from, b = to, c = length of the old mapping
 *   REMOVE, UNMAP: a = start, b = end (exclusive)
 *   FORK:      nothing; the child's descriptor the kernel installed has been closed. */
struct svm_uffd_event {
    uint8_t kind;
    uint64_t flags;
    uint64_t a;
    uint64_t b;
    uint64_t c;
    uint32_t thread_id;
};

/* userfaultfd(O_CLOEXEC | O_NONBLOCK [| UFFD_USER_MODE_ONLY]) into *fd.
 * O_NONBLOCK so that the handler thread waits in svm_uffd_poll with a timeout and can be
 * stopped; a blocking read could only be interrupted by a signal. USER_MODE_ONLY needs no
 * privilege (vm.unprivileged_userfaultfd = 0 is the default) but the kernel then fails its
 * own accesses to a missing page with EFAULT instead of raising an event. */
int svm_uffd_open(int user_mode_only, int *fd);

/* A descriptor that also sees kernel-mode faults, from /dev/userfaultfd
 * (USERFAULTFD_IOC_NEW with O_CLOEXEC | O_NONBLOCK, Linux 6.1): for whoever may open that
 * device, with no other privilege. -errno of the open or of the ioctl. */
int svm_uffd_open_device(int *fd);

/* close(fd). Linux releases the descriptor even when close reports EINTR: never retry. */
int svm_uffd_close(int fd);

/* UFFDIO_API: enables exactly `features` (all must be available, else -EINVAL) and reports
 * every feature and ioctl the kernel offers. Allowed once per descriptor. */
int svm_uffd_api(int fd, uint64_t features, uint64_t *available_features, uint64_t *ioctls);

/* UFFDIO_REGISTER of [start, start + length) with SVM_UFFD_REGISTER_* modes; *ioctls gets
 * the mask (bit SVM_UFFD_IOCTL_*) of ioctls the range supports. */
int svm_uffd_register(int fd, uint64_t start, uint64_t length, uint64_t modes, uint64_t *ioctls);

/* UFFDIO_UNREGISTER; wakes threads still waiting on missing faults in the range. */
int svm_uffd_unregister(int fd, uint64_t start, uint64_t length);

/* UFFDIO_WAKE: wakes the threads waiting on faults in the range. */
int svm_uffd_wake(int fd, uint64_t start, uint64_t length);

/* UFFDIO_COPY of `length` bytes from src into the missing pages at dst. *copied (may be NULL)
 * gets the bytes mapped, also when the result is -EAGAIN for a partial copy. */
int svm_uffd_copy(int fd, uint64_t dst, uint64_t src, uint64_t length, uint64_t mode,
                  int64_t *copied);

/* UFFDIO_ZEROPAGE: maps the shared zero page at the missing pages of the range. */
int svm_uffd_zeropage(int fd, uint64_t start, uint64_t length, uint64_t mode, int64_t *zeroed);

/* UFFDIO_WRITEPROTECT: mode SVM_UFFD_WRITEPROTECT_WP protects, mode 0 unprotects and wakes
 * the writers, SVM_UFFD_WRITEPROTECT_DONTWAKE unprotects without waking. */
int svm_uffd_writeprotect(int fd, uint64_t start, uint64_t length, uint64_t mode);

/* UFFDIO_MOVE (Linux 6.8): moves the pages at src to the missing pages at dst without a copy;
 * src becomes a hole. A kernel without it answers -EINVAL (unknown ioctl) or -ENOTTY. */
int svm_uffd_move(int fd, uint64_t dst, uint64_t src, uint64_t length, uint64_t mode,
                  int64_t *moved);

/* UFFDIO_POISON (Linux 6.6): marks the missing pages of the range poisoned; a later access
 * raises SIGBUS (BUS_MCEERR_AR) and the kernel's own accesses (process_vm_readv) fail with
 * EFAULT, as for memory lost to a hardware error. madvise(MADV_DONTNEED) or munmap clears
 * the marks. *poisoned gets the bytes marked, also for a partial -EAGAIN. */
int svm_uffd_poison(int fd, uint64_t start, uint64_t length, uint64_t mode, int64_t *poisoned);

/* Reads one message. -EAGAIN when none is queued; -EPROTO for a short read or an event this
 * header does not know. */
int svm_uffd_read_event(int fd, struct svm_uffd_event *event);

/* ppoll(POLLIN) for at most timeout_ns (< 0: forever). Returns 1 when an event is queued,
 * 0 on timeout, -errno on failure (-EINTR included: the caller decides whether to retry). */
int svm_uffd_poll(int fd, int64_t timeout_ns);

/* mremap(old_address, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_address) into
 * *result: moves a mapping, which raises a REMAP event when it is registered. A shim because
 * mremap is variadic, which Swift cannot call. */
int svm_mremap_fixed(void *old_address, uint64_t old_size, uint64_t new_size, void *new_address,
                     void **result);

/* Like svm_mremap_fixed with MREMAP_DONTUNMAP: the old range stays mapped, empty (Linux 5.7). */
int svm_mremap_dontunmap(void *old_address, uint64_t size, void *new_address, void **result);

#endif
