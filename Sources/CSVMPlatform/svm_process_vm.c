#define _GNU_SOURCE
#include "svm_process_vm.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t svm_process_vm_read(void *local, uint64_t remote, size_t size) {
    struct iovec local_iov = {.iov_base = local, .iov_len = size};
    struct iovec remote_iov = {.iov_base = (void *)(uintptr_t)remote, .iov_len = size};
    ssize_t copied;
    do {
        copied = process_vm_readv(getpid(), &local_iov, 1, &remote_iov, 1, 0);
    } while (copied < 0 && errno == EINTR);
    return copied < 0 ? -errno : copied;
}

ssize_t svm_process_vm_write(uint64_t remote, const void *local, size_t size) {
    struct iovec local_iov = {.iov_base = (void *)local, .iov_len = size};
    struct iovec remote_iov = {.iov_base = (void *)(uintptr_t)remote, .iov_len = size};
    ssize_t copied;
    do {
        copied = process_vm_writev(getpid(), &local_iov, 1, &remote_iov, 1, 0);
    } while (copied < 0 && errno == EINTR);
    return copied < 0 ? -errno : copied;
}
