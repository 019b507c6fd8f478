#define _GNU_SOURCE
#include "svm_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* What Debian 12's uapi headers (Linux 6.1) lack; values from include/uapi/linux/userfaultfd.h
 * of Linux 6.8, where UFFDIO_MOVE appeared. */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
    __u64 dst;
    __u64 src;
    __u64 len;
    __u64 mode;
    /* Written by the kernel: bytes moved or -errno. Last, as the kernel does not read it. */
    __s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
    struct uffdio_range range;
    __u64 mode;
    /* Written by the kernel: bytes poisoned or -errno. */
    __s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef UFFDIO_POISON_MODE_DONTWAKE
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_MOVE_MODE_DONTWAKE
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif

/* The header's constants are the kernel's, and the fallback layout is the kernel's. */
#define SVM_SAME(ours, theirs) _Static_assert((uint64_t)(ours) == (uint64_t)(theirs), #ours)
SVM_SAME(SVM_UFFD_FEATURE_PAGEFAULT_FLAG_WP, UFFD_FEATURE_PAGEFAULT_FLAG_WP);
SVM_SAME(SVM_UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_FORK);
SVM_SAME(SVM_UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EVENT_REMAP);
SVM_SAME(SVM_UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_EVENT_REMOVE);
SVM_SAME(SVM_UFFD_FEATURE_MISSING_HUGETLBFS, UFFD_FEATURE_MISSING_HUGETLBFS);
SVM_SAME(SVM_UFFD_FEATURE_MISSING_SHMEM, UFFD_FEATURE_MISSING_SHMEM);
SVM_SAME(SVM_UFFD_FEATURE_EVENT_UNMAP, UFFD_FEATURE_EVENT_UNMAP);
SVM_SAME(SVM_UFFD_FEATURE_SIGBUS, UFFD_FEATURE_SIGBUS);
SVM_SAME(SVM_UFFD_FEATURE_THREAD_ID, UFFD_FEATURE_THREAD_ID);
SVM_SAME(SVM_UFFD_FEATURE_MINOR_HUGETLBFS, UFFD_FEATURE_MINOR_HUGETLBFS);
SVM_SAME(SVM_UFFD_FEATURE_MINOR_SHMEM, UFFD_FEATURE_MINOR_SHMEM);
SVM_SAME(SVM_UFFD_FEATURE_EXACT_ADDRESS, UFFD_FEATURE_EXACT_ADDRESS);
SVM_SAME(SVM_UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
SVM_SAME(SVM_UFFD_FEATURE_WP_UNPOPULATED, UFFD_FEATURE_WP_UNPOPULATED);
SVM_SAME(SVM_UFFD_FEATURE_POISON, UFFD_FEATURE_POISON);
SVM_SAME(SVM_UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_WP_ASYNC);
SVM_SAME(SVM_UFFD_FEATURE_MOVE, UFFD_FEATURE_MOVE);
SVM_SAME(SVM_UFFD_REGISTER_MISSING, UFFDIO_REGISTER_MODE_MISSING);
SVM_SAME(SVM_UFFD_REGISTER_WP, UFFDIO_REGISTER_MODE_WP);
SVM_SAME(SVM_UFFD_REGISTER_MINOR, UFFDIO_REGISTER_MODE_MINOR);
SVM_SAME(SVM_UFFD_IOCTL_REGISTER, _UFFDIO_REGISTER);
SVM_SAME(SVM_UFFD_IOCTL_UNREGISTER, _UFFDIO_UNREGISTER);
SVM_SAME(SVM_UFFD_IOCTL_WAKE, _UFFDIO_WAKE);
SVM_SAME(SVM_UFFD_IOCTL_COPY, _UFFDIO_COPY);
SVM_SAME(SVM_UFFD_IOCTL_ZEROPAGE, _UFFDIO_ZEROPAGE);
SVM_SAME(SVM_UFFD_IOCTL_MOVE, _UFFDIO_MOVE);
SVM_SAME(SVM_UFFD_IOCTL_WRITEPROTECT, _UFFDIO_WRITEPROTECT);
SVM_SAME(SVM_UFFD_IOCTL_CONTINUE, _UFFDIO_CONTINUE);
SVM_SAME(SVM_UFFD_IOCTL_POISON, _UFFDIO_POISON);
SVM_SAME(SVM_UFFD_IOCTL_API, _UFFDIO_API);
SVM_SAME(SVM_UFFD_COPY_DONTWAKE, UFFDIO_COPY_MODE_DONTWAKE);
SVM_SAME(SVM_UFFD_COPY_WP, UFFDIO_COPY_MODE_WP);
SVM_SAME(SVM_UFFD_ZEROPAGE_DONTWAKE, UFFDIO_ZEROPAGE_MODE_DONTWAKE);
SVM_SAME(SVM_UFFD_WRITEPROTECT_WP, UFFDIO_WRITEPROTECT_MODE_WP);
SVM_SAME(SVM_UFFD_WRITEPROTECT_DONTWAKE, UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
SVM_SAME(SVM_UFFD_MOVE_DONTWAKE, UFFDIO_MOVE_MODE_DONTWAKE);
SVM_SAME(SVM_UFFD_MOVE_ALLOW_SRC_HOLES, UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES);
SVM_SAME(SVM_UFFD_EVENT_PAGEFAULT, UFFD_EVENT_PAGEFAULT);
SVM_SAME(SVM_UFFD_EVENT_FORK, UFFD_EVENT_FORK);
SVM_SAME(SVM_UFFD_EVENT_REMAP, UFFD_EVENT_REMAP);
SVM_SAME(SVM_UFFD_EVENT_REMOVE, UFFD_EVENT_REMOVE);
SVM_SAME(SVM_UFFD_EVENT_UNMAP, UFFD_EVENT_UNMAP);
SVM_SAME(SVM_UFFD_PAGEFAULT_WRITE, UFFD_PAGEFAULT_FLAG_WRITE);
SVM_SAME(SVM_UFFD_PAGEFAULT_WP, UFFD_PAGEFAULT_FLAG_WP);
SVM_SAME(SVM_UFFD_PAGEFAULT_MINOR, UFFD_PAGEFAULT_FLAG_MINOR);
_Static_assert(sizeof(struct uffdio_poison) == 32, "struct uffdio_poison is a range and two words");
_Static_assert(offsetof(struct uffdio_poison, updated) == 24, "uffdio_poison.updated is last");
SVM_SAME(SVM_UFFD_POISON_DONTWAKE, UFFDIO_POISON_MODE_DONTWAKE);
_Static_assert(sizeof(struct uffdio_move) == 40, "struct uffdio_move is five 64-bit words");
_Static_assert(offsetof(struct uffdio_move, move) == 32, "uffdio_move.move is last");
_Static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg is 32 bytes");
#undef SVM_SAME

/* ioctl as 0 or -errno. */
static int svm_uffd_ioctl(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument) == 0 ? 0 : -errno;
}

int svm_uffd_open(int user_mode_only, int *fd) {
    int flags = O_CLOEXEC | O_NONBLOCK | (user_mode_only ? UFFD_USER_MODE_ONLY : 0);
    long result = syscall(SYS_userfaultfd, flags);
    if (result < 0)
        return -errno;
    *fd = (int)result;
    return 0;
}

int svm_uffd_open_device(int *fd) {
    int device = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (device < 0)
        return -errno;
    int result = ioctl(device, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    int status = result < 0 ? -errno : 0;
    close(device);
    if (status == 0)
        *fd = result;
    return status;
}

int svm_uffd_close(int fd) {
    return close(fd) == 0 ? 0 : -errno;
}

int svm_uffd_api(int fd, uint64_t features, uint64_t *available_features, uint64_t *ioctls) {
    struct uffdio_api api = {.api = UFFD_API, .features = features};
    int status = svm_uffd_ioctl(fd, UFFDIO_API, &api);
    if (status == 0) {
        if (available_features)
            *available_features = api.features;
        if (ioctls)
            *ioctls = api.ioctls;
    }
    return status;
}

int svm_uffd_register(int fd, uint64_t start, uint64_t length, uint64_t modes, uint64_t *ioctls) {
    struct uffdio_register request = {.range = {.start = start, .len = length}, .mode = modes};
    int status = svm_uffd_ioctl(fd, UFFDIO_REGISTER, &request);
    if (status == 0 && ioctls)
        *ioctls = request.ioctls;
    return status;
}

int svm_uffd_unregister(int fd, uint64_t start, uint64_t length) {
    struct uffdio_range range = {.start = start, .len = length};
    return svm_uffd_ioctl(fd, UFFDIO_UNREGISTER, &range);
}

int svm_uffd_wake(int fd, uint64_t start, uint64_t length) {
    struct uffdio_range range = {.start = start, .len = length};
    return svm_uffd_ioctl(fd, UFFDIO_WAKE, &range);
}

/* The kernel writes its count field only on some paths (not when it refuses early on older
 * kernels), so it starts at 0 and only a positive value is reported. */
static void svm_uffd_report_count(int64_t *out, int64_t count) {
    if (out)
        *out = count > 0 ? count : 0;
}

int svm_uffd_copy(int fd, uint64_t dst, uint64_t src, uint64_t length, uint64_t mode,
                  int64_t *copied) {
    struct uffdio_copy request = {.dst = dst, .src = src, .len = length, .mode = mode, .copy = 0};
    int status = svm_uffd_ioctl(fd, UFFDIO_COPY, &request);
    svm_uffd_report_count(copied, request.copy);
    return status;
}

int svm_uffd_zeropage(int fd, uint64_t start, uint64_t length, uint64_t mode, int64_t *zeroed) {
    struct uffdio_zeropage request = {
        .range = {.start = start, .len = length}, .mode = mode, .zeropage = 0};
    int status = svm_uffd_ioctl(fd, UFFDIO_ZEROPAGE, &request);
    svm_uffd_report_count(zeroed, request.zeropage);
    return status;
}

int svm_uffd_writeprotect(int fd, uint64_t start, uint64_t length, uint64_t mode) {
    struct uffdio_writeprotect request = {.range = {.start = start, .len = length}, .mode = mode};
    return svm_uffd_ioctl(fd, UFFDIO_WRITEPROTECT, &request);
}

int svm_uffd_move(int fd, uint64_t dst, uint64_t src, uint64_t length, uint64_t mode,
                  int64_t *moved) {
    struct uffdio_move request = {.dst = dst, .src = src, .len = length, .mode = mode, .move = 0};
    int status = svm_uffd_ioctl(fd, UFFDIO_MOVE, &request);
    svm_uffd_report_count(moved, request.move);
    return status;
}

int svm_uffd_poison(int fd, uint64_t start, uint64_t length, uint64_t mode, int64_t *poisoned) {
    struct uffdio_poison request = {.range = {.start = start, .len = length}, .mode = mode, .updated = 0};
    int status = svm_uffd_ioctl(fd, UFFDIO_POISON, &request);
    svm_uffd_report_count(poisoned, request.updated);
    return status;
}

int svm_uffd_read_event(int fd, struct svm_uffd_event *event) {
    struct uffd_msg message;
    ssize_t count = read(fd, &message, sizeof message);
    if (count < 0)
        return -errno;
    if ((size_t)count != sizeof message)
        return -EPROTO;
    *event = (struct svm_uffd_event){.kind = message.event};
    switch (message.event) {
    case UFFD_EVENT_PAGEFAULT:
        event->flags = message.arg.pagefault.flags;
        event->a = message.arg.pagefault.address;
        event->thread_id = message.arg.pagefault.feat.ptid;
        return 0;
    case UFFD_EVENT_REMAP:
        event->a = message.arg.remap.from;
        event->b = message.arg.remap.to;
        event->c = message.arg.remap.len;
        return 0;
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP:
        event->a = message.arg.remove.start;
        event->b = message.arg.remove.end;
        return 0;
    case UFFD_EVENT_FORK:
        /* Only delivered if EVENT_FORK was requested; the child's mirror is not ours to run,
         * and an open descriptor would keep the child's faults waiting forever. */
        close((int)message.arg.fork.ufd);
        return 0;
    default:
        return -EPROTO;
    }
}

int svm_uffd_poll(int fd, int64_t timeout_ns) {
    struct pollfd descriptor = {.fd = fd, .events = POLLIN};
    /* ppoll: a timeout below a millisecond stays below one (poll would round it up). */
    struct timespec timeout = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    int ready = ppoll(&descriptor, 1, timeout_ns < 0 ? NULL : &timeout, NULL);
    if (ready < 0)
        return -errno;
    if (ready == 0)
        return 0;
    /* POLLERR: the handshake has not been done (the kernel's answer before UFFDIO_API). */
    if (descriptor.revents & (POLLERR | POLLNVAL))
        return (descriptor.revents & POLLNVAL) ? -EBADF : -EINVAL;
    return 1;
}

int svm_mremap_fixed(void *old_address, uint64_t old_size, uint64_t new_size, void *new_address,
                     void **result) {
    void *moved = mremap(old_address, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_address);
    if (moved == MAP_FAILED)
        return -errno;
    *result = moved;
    return 0;
}

int svm_mremap_dontunmap(void *old_address, uint64_t size, void *new_address, void **result) {
    void *moved = mremap(old_address, size, size, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                         new_address);
    if (moved == MAP_FAILED)
        return -errno;
    *result = moved;
    return 0;
}
