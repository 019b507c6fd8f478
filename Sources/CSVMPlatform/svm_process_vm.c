#define _GNU_SOURCE
#include "svm_process_vm.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

/* Remote iovecs per call: 256 KiB of pages, on the stack. */
#define SVM_PAGES_PER_CALL 64
#define SVM_PAGE 4096u

/* One call of process_vm_readv or process_vm_writev on the calling process, the remote side
 * cut into one iovec per page: the kernel pins the pages of one iovec at a time, so while it
 * waits for a page's fault (userfaultfd in kernel mode) it holds no other page pinned. With
 * one iovec for the whole range it would keep the pages before the faulting one pinned
 * while it waits, and a handler that must move them first would wait for it forever. */
static ssize_t transfer(int write, void *local, uint64_t remote, size_t size) {
    size_t done = 0;
    while (done < size) {
        struct iovec pages[SVM_PAGES_PER_CALL];
        int count = 0;
        size_t batch = 0;
        uint64_t address = remote + done;
        while (count < SVM_PAGES_PER_CALL && done + batch < size) {
            size_t in_page = SVM_PAGE - (size_t)(address % SVM_PAGE);
            size_t length = size - done - batch < in_page ? size - done - batch : in_page;
            pages[count].iov_base = (void *)(uintptr_t)address;
            pages[count].iov_len = length;
            count++;
            batch += length;
            address += length;
        }
        struct iovec local_iov = {.iov_base = (char *)local + done, .iov_len = batch};
        ssize_t copied;
        do {
            copied = write ? process_vm_writev(getpid(), &local_iov, 1, pages, (unsigned long)count, 0)
                           : process_vm_readv(getpid(), &local_iov, 1, pages, (unsigned long)count, 0);
        } while (copied < 0 && errno == EINTR);
        if (copied < 0)
            return done > 0 ? (ssize_t)done : -errno;
        done += (size_t)copied;
        if ((size_t)copied < batch)
            break; /* a page could not be reached: what came before it is done */
    }
    return (ssize_t)done;
}

ssize_t svm_process_vm_read(void *local, uint64_t remote, size_t size) {
    return transfer(0, local, remote, size);
}

ssize_t svm_process_vm_write(uint64_t remote, const void *local, size_t size) {
    return transfer(1, (void *)local, remote, size);
}
