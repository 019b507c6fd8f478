/* svm_interpose.h - the libc entry points the framework wraps to see what userfaultfd does
 * not report: protection changes (mprotect, pkey_mprotect). */
#ifndef SVM_INTERPOSE_H
#define SVM_INTERPOSE_H

#include <stddef.h>
#include <stdint.h>

/* When a hook is called: before the system call (the change has not taken effect), and after
 * it (whatever its result). */
enum {
    SVM_PROTECTION_BEFORE = 0,
    SVM_PROTECTION_AFTER = 1,
};

/* Called around every wrapped protection change, on the calling thread; not again for a
 * change the hook itself makes (a thread-local flag). start and length are the caller's
 * arguments, unchecked. */
typedef void (*svm_protection_hook)(uint64_t start, uint64_t length, int protection, int phase);

/* Installs the hook (NULL: none). Atomic; a call in flight keeps the hook it started with. */
void svm_set_protection_hook(svm_protection_hook hook);

/* The framework's pkey_mprotect (declared here because Swift's Glibc module hides it without
 * _GNU_SOURCE); mprotect comes from <sys/mman.h>. */
int pkey_mprotect(void *start, size_t length, int protection, int pkey);

/* mprotect(2) as a raw system call, never seen by the hook: what a program calling the
 * system call directly does. Returns 0 or -errno. */
int svm_mprotect_unwatched(void *start, size_t length, int protection);

#endif
