/* The framework's definitions of mprotect and pkey_mprotect. Linked into the program, they
 * take the place of libc's for every call the dynamic linker binds to them: the program's own
 * code always, shared libraries and dlopen'd plugins when the executable exports the symbols.
 * libc's internal calls (malloc growing a heap) and raw system calls do not come here. */
#define _GNU_SOURCE
#include "svm_interpose.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic(svm_protection_hook) installed_hook;
/* Set while this thread runs the hook: a protection change the hook makes goes straight
 * to the kernel. */
static __thread int in_hook;

void svm_set_protection_hook(svm_protection_hook hook) {
    atomic_store_explicit(&installed_hook, hook, memory_order_release);
}

static int change_protection(void *start, size_t length, int protection, long pkey, int with_key) {
    svm_protection_hook hook = in_hook ? NULL : atomic_load_explicit(&installed_hook, memory_order_acquire);
    if (hook) {
        in_hook = 1;
        hook((uint64_t)(uintptr_t)start, (uint64_t)length, protection, SVM_PROTECTION_BEFORE);
        in_hook = 0;
    }
    long result = with_key ? syscall(SYS_pkey_mprotect, start, length, protection, pkey)
                           : syscall(SYS_mprotect, start, length, protection);
    int saved = errno;
    if (hook) {
        in_hook = 1;
        hook((uint64_t)(uintptr_t)start, (uint64_t)length, protection, SVM_PROTECTION_AFTER);
        in_hook = 0;
    }
    errno = saved;
    return (int)result;
}

__attribute__((visibility("default"))) int mprotect(void *start, size_t length, int protection) {
    return change_protection(start, length, protection, -1, 0);
}

__attribute__((visibility("default"))) int pkey_mprotect(void *start, size_t length, int protection, int pkey) {
    return change_protection(start, length, protection, pkey, 1);
}

int svm_mprotect_unwatched(void *start, size_t length, int protection) {
    return syscall(SYS_mprotect, start, length, protection) == 0 ? 0 : -errno;
}
