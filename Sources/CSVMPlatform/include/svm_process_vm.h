/* svm_process_vm.h - prefixed shims for process_vm_readv(2) / process_vm_writev(2) on the
 * calling process: how a simulated device touches system memory the way a DMA engine does.
 *
 * The kernel copies through get_user_pages instead of the CPU's own page tables, so an
 * address that is unmapped, PROT_NONE, or a missing page registered with a user-mode-only
 * userfaultfd fails with EFAULT (or a short transfer) instead of crashing the process or
 * blocking the thread on a fault only the mirror could resolve. A missing page of a
 * userfaultfd that serves kernel-mode faults makes the call wait for the mirror instead;
 * the pages are then transferred one iovec per page, so the call never holds a page pinned
 * while it waits (the mirror may have to move that page first). Both return the bytes
 * copied (possibly fewer than size, at a page boundary) or -errno; EINTR is retried. */
#ifndef SVM_PROCESS_VM_H
#define SVM_PROCESS_VM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Copies size bytes of this process's memory at remote into local. */
ssize_t svm_process_vm_read(void *local, uint64_t remote, size_t size);

/* Copies size bytes of local into this process's memory at remote. */
ssize_t svm_process_vm_write(uint64_t remote, const void *local, size_t size);

#endif
