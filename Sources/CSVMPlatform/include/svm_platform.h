/* svm_platform.h - prefixed shims for the Linux facilities the framework uses. */
#ifndef SVM_PLATFORM_H
#define SVM_PLATFORM_H

#include <stddef.h>

#include "svm_affinity.h"   /* the CPUs a thread may run on */
#include "svm_atomic.h"     /* C11 atomics on plain memory */
#include "svm_futex.h"      /* waiting for a word to change */
#include "svm_process_vm.h" /* process_vm_readv/writev on this process */
#include "svm_thread.h"     /* the calling thread's kernel id */
#include "svm_uffd.h"       /* userfaultfd shims */
#include "svm_vma.h"        /* find_vma (PROCMAP_QUERY) and mincore */

/* dlopen(path, RTLD_NOW | RTLD_LOCAL). On failure returns NULL and copies dlerror()'s text,
 * cut to error_size - 1 bytes, into error. */
void *svm_dl_open(const char *path, char *error, size_t error_size);

/* dlsym(handle, symbol), NULL when absent. */
void *svm_dl_symbol(void *handle, const char *symbol);

/* Whether address is the start of a function symbol (STT_FUNC or STT_GNU_IFUNC) of a loaded
 * object, by its ELF symbol entry (dladdr1): an entry symbol that is data must not be
 * called. */
int svm_dl_is_function(void *address);

/* Checks, without mapping it, that path can be given to dlopen: a regular file, readable,
 * an ELF shared object of this machine's class, byte order and architecture, whose program
 * headers and loadable segments lie inside the file (a truncated copy is refused: mapping it
 * crashes the dynamic loader with SIGBUS). Opened with O_NONBLOCK, so a FIFO is refused, not
 * waited on. Returns 0, or -1 with a one-line reason in error. */
int svm_dl_check_file(const char *path, char *error, size_t error_size);

#endif
